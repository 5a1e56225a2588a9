"""Rate decks: lookup cost against deck size, CSV parsing, and importing into the database."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterable
from decimal import Decimal

from bench.common import Databases, Metric, median, pg_name, runtime
from commcredits.domain.rating import HEADER, MAX_PREFIX, Rate, RateDeck, parse_deck
from commcredits.services.rating import import_deck

# Country codes with a name, for realistic prefixes (1 to 3 digits, as in E.164).
COUNTRIES: list[tuple[str, str]] = [
    ("1", "United States"), ("44", "United Kingdom"), ("49", "Germany"), ("33", "France"),
    ("61", "Australia"), ("81", "Japan"), ("86", "China"), ("91", "India"),
    ("55", "Brazil"), ("34", "Spain"),  # the ten the small deck covers
    ("7", "Russia"), ("20", "Egypt"), ("27", "South Africa"), ("30", "Greece"),
    ("31", "Netherlands"), ("32", "Belgium"), ("36", "Hungary"), ("39", "Italy"),
    ("40", "Romania"), ("41", "Switzerland"), ("43", "Austria"), ("45", "Denmark"),
    ("46", "Sweden"), ("47", "Norway"), ("48", "Poland"), ("51", "Peru"), ("52", "Mexico"),
    ("54", "Argentina"), ("56", "Chile"), ("57", "Colombia"), ("60", "Malaysia"),
    ("62", "Indonesia"), ("63", "Philippines"), ("64", "New Zealand"), ("65", "Singapore"),
    ("66", "Thailand"), ("82", "South Korea"), ("84", "Vietnam"), ("90", "Turkey"),
    ("92", "Pakistan"), ("234", "Nigeria"), ("254", "Kenya"), ("351", "Portugal"),
    ("353", "Ireland"), ("358", "Finland"), ("420", "Czechia"), ("852", "Hong Kong"),
    ("966", "Saudi Arabia"), ("971", "United Arab Emirates"), ("972", "Israel"),
]
SMALL = COUNTRIES[:10]
LOOKUP_TYPES = ("geographic", "mobile")
ROW_TYPES = ("geographic", "geographic", "mobile", "mobile", "any")
LOOKUPS = 10_000
BIG = 100_000


def _money(rng: random.Random) -> Decimal:
    """A per-minute price between 0.0005 and 0.5 (4 places)."""
    return Decimal(rng.randint(5, 5000)) / 10_000


def _fee(rng: random.Random) -> Decimal:
    return Decimal(rng.choice([0, 0, 0, 100, 250])) / 10_000


def make_rows(count: int, seed: int = 42) -> list[Rate]:
    """``count`` distinct (prefix, number type) rows: every country code as ``any``, then
    area and mobile prefixes of 1 to 6 more digits under random country codes."""
    rng = random.Random(seed)
    countries = SMALL if count <= len(SMALL) else COUNTRIES
    rows: list[Rate] = []
    seen: set[tuple[str, str]] = set()
    for cc, name in countries[:count]:
        rows.append(Rate(cc, name, "any", _money(rng), _fee(rng), 60))
        seen.add((cc, "any"))
    while len(rows) < count:
        cc, name = rng.choice(countries)
        extra = str(rng.randint(1, 9)) + "".join(
            str(rng.randint(0, 9)) for _ in range(rng.randint(0, 5)))
        number_type = rng.choice(ROW_TYPES)
        key = (cc + extra, number_type)
        if key in seen:
            continue
        seen.add(key)
        label = {"mobile": "Mobile", "geographic": "Fixed", "any": "Other"}[number_type]
        rows.append(Rate(key[0], f"{name} {label} {extra}", number_type, _money(rng),
                         _fee(rng), rng.choice([1, 6, 60])))
    return rows


def make_numbers(count: int = LOOKUPS, seed: int = 42) -> list[tuple[str, str]]:
    """E.164-like digit strings (11 to 13 digits) in the small deck's ten countries, so both
    decks price every number, with the number type asked for."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        cc, _name = rng.choice(SMALL)
        length = rng.randint(11, 13)
        rest = str(rng.randint(1, 9)) + "".join(
            str(rng.randint(0, 9)) for _ in range(length - len(cc) - 1))
        out.append((cc + rest, rng.choice(LOOKUP_TYPES)))
    return out


def to_csv(rows: Iterable[Rate]) -> str:
    lines = [",".join(HEADER)]
    lines.extend(f"{r.prefix},{r.destination},{r.number_type},{r.per_minute},"
                 f"{r.connection_fee},{r.increment_s}" for r in rows)
    return "\n".join(lines) + "\n"


def _lookup_ns(deck: RateDeck, numbers: list[tuple[str, str]], passes: int) -> float:
    """Median over ``passes`` of the mean ns per lookup in one pass over ``numbers``."""
    lookup = deck.lookup
    for digits, kind in numbers:  # warm-up pass
        if lookup(digits, kind) is None:
            raise SystemExit(f"benchmark deck does not price {digits} ({kind})")
    per_pass = []
    gc.disable()
    try:
        for _ in range(passes):
            start = time.perf_counter_ns()
            for digits, kind in numbers:
                lookup(digits, kind)
            per_pass.append((time.perf_counter_ns() - start) / len(numbers))
    finally:
        gc.enable()
    return median(per_pass)


def probes(deck: RateDeck, numbers: list[tuple[str, str]]) -> float:
    """Mean hash-map probes per lookup: lookup walks prefix lengths from the longest down to
    the row that answers."""
    total = 0
    for digits, kind in numbers:
        found = deck.lookup(digits, kind)
        assert found is not None
        total += min(len(digits), MAX_PREFIX) - len(found.prefix) + 1
    return total / len(numbers)


def lookup_metrics(quick: bool) -> list[Metric]:
    numbers = make_numbers()
    small = RateDeck("USD", make_rows(10))
    big = RateDeck("USD", make_rows(BIG))
    passes = 7 if quick else 41
    # interleave the two decks so drift (turbo, noisy neighbours) hits both alike
    small_ns, big_ns = [], []
    for _ in range(3):
        small_ns.append(_lookup_ns(small, numbers, passes))
        big_ns.append(_lookup_ns(big, numbers, passes))
    s, b = median(small_ns), median(big_ns)
    return [
        Metric("rate_lookup_10_rows_ns", s, "ns",
               f"median per lookup, 10-row deck, {LOOKUPS:,} numbers"),
        Metric("rate_lookup_100k_rows_ns", b, "ns", f"same numbers, {big.size:,}-row deck"),
        Metric("rate_lookup_ratio_100k_vs_10", b / s, "x",
               f"≈1: cost independent of deck size (probes per lookup "
               f"{probes(small, numbers):.1f} vs {probes(big, numbers):.1f})"),
    ]


def parse_metrics(quick: bool, text: str) -> list[Metric]:
    runs = []
    for _ in range(1 if quick else 3):
        start = time.perf_counter()
        rates = parse_deck(text)
        runs.append(time.perf_counter() - start)
    assert len(rates) == BIG
    return [Metric("rate_deck_parse_100k_rows_s", median(runs), "s",
                   f"parse_deck on a {BIG:,}-row CSV ({len(text) / 1e6:.1f} MB)"
                   + ("" if quick else ", median of 3"))]


def import_metrics(quick: bool, text: str, dbs: Databases, backends: list[str]) -> list[Metric]:
    out = []
    for backend in backends:
        runs = []
        with dbs.url(backend) as url, runtime(url) as rt:
            for currency in ["USD", "EUR", "GBP"][: 1 if quick else 3]:
                start = time.perf_counter()
                with rt.db.uow() as uow:
                    result = import_deck(uow, currency, text)
                    uow.commit()
                runs.append(time.perf_counter() - start)
                assert result["rows"] == BIG, result
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        out.append(Metric(pg_name("rate_deck_import_100k_rows_s", backend), median(runs), "s",
                          f"{label}: import_deck (parse + insert) + commit, empty deck"
                          + ("" if quick else ", median of 3")))
    return out


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    text = to_csv(make_rows(BIG))
    return [*lookup_metrics(quick), *parse_metrics(quick, text),
            *import_metrics(quick, text, dbs, backends)]
