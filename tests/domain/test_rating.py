"""Rating: the price of a call, the time an amount buys, longest-prefix lookup, deck import."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.rating import HEADER, Rate, RateDeck, parse_deck
from tests.domain.helpers import cents

D = Decimal
HEAD = ",".join(HEADER)
ORDINARY_TYPES = ("geographic", "mobile", "toll_free", "premium")
SPECIAL_TYPES = ("toll_free_inbound", "sms")


def rate(per_minute: str = "0.60", fee: str = "0.10", increment: int = 60, *,
         prefix: str = "1", number_type: str = "any", destination: str = "X") -> Rate:
    return Rate(prefix, destination, number_type, D(per_minute), D(fee), increment)


def exact_charge(r: Rate, duration_s: int, *, with_fee: bool = True, places: int = 2) -> Decimal:
    """The charge computed with exact fractions and a hand-written half-up rounding."""
    if duration_s <= 0:
        return D(0)
    increments = -(-duration_s // r.increment_s)
    exact = Fraction(r.connection_fee if with_fee else 0) + Fraction(
        increments * r.increment_s) * Fraction(r.per_minute) / 60
    scaled = exact * 10**places
    whole = int(scaled)  # exact >= 0, so int() floors
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return D(whole).scaleb(-places)


# -- Rate.charge -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("increment", "duration", "expected", "expected_no_fee"),
    [
        (60, 0, "0", "0"),
        (60, 1, "0.70", "0.60"),
        (60, 59, "0.70", "0.60"),
        (60, 60, "0.70", "0.60"),
        (60, 61, "1.30", "1.20"),
        (6, 0, "0", "0"),
        (6, 1, "0.16", "0.06"),
        (6, 59, "0.70", "0.60"),
        (6, 60, "0.70", "0.60"),
        (6, 61, "0.76", "0.66"),
        (1, 61, "0.71", "0.61"),
        (1, -5, "0", "0"),
    ],
)
def test_charge_table(increment: int, duration: int, expected: str, expected_no_fee: str) -> None:
    r = rate("0.60", "0.10", increment)
    assert r.charge(duration, "USD") == D(expected)
    assert r.charge(duration, "USD", with_fee=False) == D(expected_no_fee)


def test_charge_rounds_half_up_once_per_call() -> None:
    # 3 minutes at 0.015: 0.045 exactly → 0.05 (rounding each minute would give 0.06)
    assert rate("0.015", "0", 60).charge(180, "USD") == D("0.05")
    # 0.125 → 0.13 (half up, not half even)
    assert rate("0.125", "0", 60).charge(60, "USD") == D("0.13")
    # fee and minutes are added before rounding: 0.004 + 0.001 = 0.005 → 0.01
    assert rate("0.001", "0.004", 60).charge(60, "USD") == D("0.01")
    assert rate("0.001", "0.004", 60).charge(60, "USD", with_fee=False) == D("0.00")
    # just below the half rounds down
    assert rate("0.0149", "0", 60).charge(60, "USD") == D("0.01")


def test_charge_uses_the_currency_places() -> None:
    assert rate("2.5", "0", 60).charge(60, "JPY") == D("3")
    assert rate("0.1234", "0", 60).charge(60, "BHD") == D("0.123")


def test_charge_of_a_silent_call_is_zero_even_with_a_fee() -> None:
    assert rate("1.00", "5.00", 60).charge(0, "USD") == 0


# per_minute / fee as deck values: up to 6 decimal places
deck_amounts = st.integers(0, 50_000_000).map(lambda n: D(n).scaleb(-6))
increments = st.sampled_from([1, 6, 30, 60, 3600]) | st.integers(1, 3600)
rates = st.builds(lambda pm, fee, inc: rate(str(pm), str(fee), inc), deck_amounts,
                  st.integers(0, 2_000_000).map(lambda n: D(n).scaleb(-6)), increments)


@given(rates, st.integers(0, 200_000), st.booleans())
def test_charge_matches_exact_formula(r: Rate, duration: int, with_fee: bool) -> None:
    assert r.charge(duration, "USD", with_fee=with_fee) == exact_charge(r, duration,
                                                                        with_fee=with_fee)


# -- Rate.seconds_for ------------------------------------------------------------------------

# rates that are not absurdly small per second, so the search stays short
paid_rates = st.builds(
    lambda pm, fee, inc: rate(str(pm), str(fee), inc),
    st.integers(100, 20_000_000).map(lambda n: D(n).scaleb(-6)),
    st.integers(0, 2_000_000).map(lambda n: D(n).scaleb(-6)),
    increments,
)


@given(paid_rates, cents(1, 1_000_000), st.booleans())
def test_seconds_for_is_the_longest_whole_number_of_increments(r: Rate, amount: Decimal,
                                                               with_fee: bool) -> None:
    seconds = r.seconds_for(amount, "USD", with_fee=with_fee)
    assert seconds is not None
    assert seconds >= 0
    assert seconds % r.increment_s == 0
    assert r.charge(seconds, "USD", with_fee=with_fee) <= amount
    assert r.charge(seconds + r.increment_s, "USD", with_fee=with_fee) > amount


def test_seconds_for_examples() -> None:
    r = rate("0.60", "0.10", 60)
    assert r.seconds_for(D("0.70"), "USD") == 60
    assert r.seconds_for(D("1.29"), "USD") == 60
    assert r.seconds_for(D("1.30"), "USD") == 120
    assert r.seconds_for(D("1.20"), "USD", with_fee=False) == 120
    assert rate("0.60", "0.10", 6).seconds_for(D("1.00"), "USD") == 90  # 0.10 + 1.5 min


def test_seconds_for_free_per_minute_is_unlimited() -> None:
    assert rate("0", "0", 60).seconds_for(D("0.01"), "USD") is None
    assert rate("0", "0.50", 60).seconds_for(D("0.50"), "USD") is None
    assert rate("0", "0.50", 60).seconds_for(D("0.01"), "USD", with_fee=False) is None


def test_seconds_for_below_the_fee_is_zero() -> None:
    assert rate("0.60", "0.50", 60).seconds_for(D("0.49"), "USD") == 0
    assert rate("0", "0.50", 60).seconds_for(D("0.49"), "USD") == 0
    assert rate("0.60", "0.50", 60).seconds_for(D("0.49"), "USD", with_fee=False) == 0
    assert rate("0.30", "0.50", 60).seconds_for(D("0.49"), "USD", with_fee=False) == 60
    assert rate("0.60", "0", 60).seconds_for(D("0"), "USD") == 0
    # a fee of 0.005 is charged as 0.01 once rounded, so 0.00 buys nothing
    assert rate("0.60", "0.005", 60).seconds_for(D("0.00"), "USD") == 0


# -- RateDeck.lookup -------------------------------------------------------------------------

def _deck(*rows: Rate) -> RateDeck:
    return RateDeck("USD", rows)


def test_type_specific_row_beats_any_at_the_same_prefix() -> None:
    any44 = rate(prefix="44", number_type="any")
    mob44 = rate(prefix="44", number_type="mobile")
    deck = _deck(any44, mob44)
    assert deck.lookup("447400123456", "mobile") is mob44
    assert deck.lookup("442079460000", "geographic") is any44
    assert _deck(mob44, any44).lookup("447400123456", "mobile") is mob44


def test_longer_any_prefix_beats_shorter_type_specific() -> None:
    mob44 = rate(prefix="44", number_type="mobile")
    any447 = rate(prefix="447", number_type="any")
    deck = _deck(mob44, any447)
    assert deck.lookup("447400123456", "mobile") is any447
    assert deck.lookup("446000000000", "mobile") is mob44
    assert deck.lookup("446000000000", "geographic") is None


def test_special_rows_are_kept_apart() -> None:
    any1 = rate(prefix="1", number_type="any")
    tfi1 = rate(prefix="1", number_type="toll_free_inbound")
    sms1 = rate(prefix="1", number_type="sms")
    tfi14 = rate(prefix="14", number_type="toll_free_inbound")
    # toll_free_inbound / sms rows never answer ordinary lookups
    deck = _deck(tfi1, sms1, tfi14)
    for kind in (*ORDINARY_TYPES, "any"):
        assert deck.lookup("14255550100", kind) is None
    # and `any` never answers them
    deck = _deck(any1)
    assert deck.lookup("14255550100", "toll_free_inbound") is None
    assert deck.lookup("14255550100", "sms") is None
    # nor does one stand in for the other
    assert _deck(tfi1).lookup("14255550100", "sms") is None
    assert _deck(sms1).lookup("14255550100", "toll_free_inbound") is None
    deck = _deck(any1, tfi1, sms1, tfi14)
    assert deck.lookup("14255550100", "toll_free_inbound") is tfi14
    assert deck.lookup("13055550100", "toll_free_inbound") is tfi1
    assert deck.lookup("14255550100", "sms") is sms1
    assert deck.lookup("14255550100", "mobile") is any1


def test_no_match_is_none() -> None:
    deck = _deck(rate(prefix="44"), rate(prefix="33", number_type="mobile"))
    assert deck.lookup("14255550100", "geographic") is None
    assert deck.lookup("33123456789", "geographic") is None
    assert deck.lookup("", "geographic") is None
    assert _deck().lookup("14255550100", "geographic") is None


def test_lookup_considers_at_most_fifteen_digits() -> None:
    r = rate(prefix="123456789012345")
    deck = _deck(r)
    assert deck.lookup("1234567890123456789", "mobile") is r
    assert deck.size == 1


def brute_force(rows: list[Rate], digits: str, number_type: str) -> Rate | None:
    """The rule read straight from the spec, with no index."""
    special = number_type in SPECIAL_TYPES

    def answers(r: Rate) -> bool:
        return r.number_type == number_type or (r.number_type == "any" and not special)

    candidates = [r for r in rows if digits.startswith(r.prefix) and answers(r)]
    if not candidates:
        return None
    # longest prefix first; at equal prefix the type-specific row wins over `any`
    return max(candidates, key=lambda r: (len(r.prefix), r.number_type != "any"))


ALL_TYPES = (*ORDINARY_TYPES, "any", *SPECIAL_TYPES)
prefixes = st.text("1234", min_size=1, max_size=5)
row_keys = st.lists(st.tuples(prefixes, st.sampled_from(ALL_TYPES)), unique=True, max_size=25)


@given(row_keys, st.randoms(use_true_random=False),
       st.lists(st.tuples(st.text("1234", min_size=0, max_size=7),
                          st.sampled_from((*ORDINARY_TYPES, *SPECIAL_TYPES))), max_size=20))
def test_deck_answers_do_not_depend_on_row_order(keys: list[tuple[str, str]],
                                                  rnd: random.Random,
                                                  queries: list[tuple[str, str]]) -> None:
    rows = [rate(prefix=p, number_type=t, destination=f"{p}/{t}") for p, t in keys]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    a, b = RateDeck("USD", rows), RateDeck("USD", shuffled)
    for digits, kind in queries:
        assert a.lookup(digits, kind) == b.lookup(digits, kind) == brute_force(rows, digits, kind)


def test_large_deck_answers_like_brute_force() -> None:
    rnd = random.Random(20270101)
    keys: set[tuple[str, str]] = set()
    while len(keys) < 100_000:
        keys.add((str(rnd.randint(1, 9)) + "".join(rnd.choices("0123456789",
                                                                k=rnd.randint(0, 6))),
                  rnd.choice(ALL_TYPES)))
    rows = [rate(prefix=p, number_type=t, destination=f"{p}/{t}") for p, t in sorted(keys)]
    deck = RateDeck("USD", rows)
    assert deck.size == 100_000
    # brute force indexed by prefix only to keep the test quick; the rule is the same
    by_prefix: dict[str, list[Rate]] = {}
    for r in rows:
        by_prefix.setdefault(r.prefix, []).append(r)
    matched = 0
    for _ in range(2_000):
        digits = str(rnd.randint(1, 9)) + "".join(rnd.choices("0123456789", k=10))
        kind = rnd.choice((*ORDINARY_TYPES, *SPECIAL_TYPES))
        near = [r for n in range(1, len(digits) + 1) for r in by_prefix.get(digits[:n], [])]
        expected = brute_force(near, digits, kind)
        assert deck.lookup(digits, kind) == expected
        matched += expected is not None
    assert matched > 1_000  # the sample exercises real matches, not just misses


# -- parse_deck ------------------------------------------------------------------------------

GOOD = f"""{HEAD}
1,United States,any,0.020,0,60
1800,US toll-free,toll_free,0,0,60
44,United Kingdom,geographic,0.025,0.015,60
447,United Kingdom mobile,mobile,0.12,0,6
44,UK toll-free inbound,toll_free_inbound,0.03,0,60
1,US SMS,sms,0.0075,0,1
33,"France, geographic",any,0.123456,0,3600
"""


def test_parse_good_deck() -> None:
    rates = parse_deck(GOOD)
    assert len(rates) == 7
    assert rates[0] == Rate("1", "United States", "any", D("0.020"), D("0"), 60)
    assert rates[3] == Rate("447", "United Kingdom mobile", "mobile", D("0.12"), D("0"), 6)
    assert rates[6] == Rate("33", "France, geographic", "any", D("0.123456"), D("0"), 3600)
    deck = RateDeck("USD", rates)
    assert deck.lookup("447400123456", "mobile") == rates[3]
    assert deck.lookup("442079460000", "toll_free_inbound") == rates[4]


def test_parse_strips_spaces_and_tolerates_bom_crlf_and_blank_lines() -> None:
    text = f"\ufeff{HEAD}\r\n\r\n 1 , US , any , 0.02 , 0 , 60 \r\n   \r\n44,UK,any,0.03,0,60\r\n"
    rates = parse_deck(text)
    assert rates == [Rate("1", "US", "any", D("0.02"), D("0"), 60),
                     Rate("44", "UK", "any", D("0.03"), D("0"), 60)]


def _problems(text: str) -> list[dict[str, object]]:
    with pytest.raises(DomainError) as e:
        parse_deck(text)
    assert e.value.code == "validation_error"
    assert e.value.kind is ErrorKind.INVALID
    assert "nothing imported" in e.value.message
    assert e.value.details is not None
    return e.value.details


@pytest.mark.parametrize(
    "header",
    ["", "prefix,destination,number_type,per_minute,connection_fee",
     "prefix,destination,type,per_minute,connection_fee,increment_s",
     "destination,prefix,number_type,per_minute,connection_fee,increment_s",
     "1,US,any,0.02,0,60"],
)
def test_bad_header_is_line_one(header: str) -> None:
    details = _problems(f"{header}\n1,US,any,0.02,0,60\n")
    assert [d["line"] for d in details] == [1]
    assert "header" in str(details[0]["message"])


@pytest.mark.parametrize(
    "text", [f"{HEAD}\n", HEAD, f"{HEAD}\n\n\n", f"\ufeff{HEAD}\r\n"],
)
def test_empty_deck_is_refused(text: str) -> None:
    details = _problems(text)
    assert len(details) == 1
    assert "no rows" in str(details[0]["message"])


def test_empty_text_is_refused() -> None:
    assert [d["line"] for d in _problems("")] == [1]


BAD_LINES = {
    "+44,UK,any,0.02,0,60": "prefix",
    "44a,UK,any,0.02,0,60": "prefix",
    "1234567890123456,Long,any,0.02,0,60": "prefix",
    ",Nothing,any,0.02,0,60": "prefix",
    "44,,any,0.02,0,60": "destination",
    "44,UK,landline,0.02,0,60": "number_type",
    "44,UK,ANY,0.02,0,60": "number_type",
    "44,UK,any,-0.02,0,60": "per_minute",
    "44,UK,any,0.1234567,0,60": "per_minute",
    "44,UK,any,1e-2,0,60": "per_minute",
    "44,UK,any,,0,60": "per_minute",
    "44,UK,any,0.02,-1,60": "connection_fee",
    "44,UK,any,0.02,0.0000001,60": "connection_fee",
    "44,UK,any,0.02,0,0": "increment_s",
    "44,UK,any,0.02,0,3601": "increment_s",
    "44,UK,any,0.02,0,1.5": "increment_s",
    "44,UK,any,0.02,0,-60": "increment_s",
    "44,UK,any,0.02,0,sixty": "increment_s",
    "44,UK,any,0.02,0": "columns",
    "44,UK,any,0.02,0,60,extra": "columns",
    "44": "columns",
}


@pytest.mark.parametrize(("line", "what"), list(BAD_LINES.items()))
def test_each_bad_line_is_named(line: str, what: str) -> None:
    text = f"{HEAD}\n1,US,any,0.02,0,60\n{line}\n33,FR,any,0.02,0,60\n"
    details = _problems(text)
    assert [d["line"] for d in details] == [3]
    assert what in str(details[0]["message"])


def test_every_bad_line_is_listed_not_just_the_first() -> None:
    bad = list(BAD_LINES)
    lines = [HEAD]
    expected = []
    for i, b in enumerate(bad):
        lines.append(f"{100 + i},Good,any,0.01,0,60")
        lines.append(b)
        expected.append(len(lines))
        if i % 3 == 0:
            lines.append("")  # blank lines are skipped but still counted
    details = _problems("\n".join(lines) + "\n")
    assert [d["line"] for d in details] == expected
    assert len(details) == len(bad) > 20  # details keep all, even past the message's 20


def test_duplicate_prefix_and_type_names_the_repeat() -> None:
    text = (f"{HEAD}\n"
            "44,UK,any,0.02,0,60\n"  # 2
            "44,UK mobile,mobile,0.10,0,60\n"  # 3: same prefix, other type: fine
            "\n"  # 4
            "44,UK again,any,0.03,0,60\n"  # 5: repeats 2
            "440,UK,any,0.02,0,60\n"  # 6: other prefix: fine
            " 44 ,UK,mobile,0.10,0,60\n")  # 7: repeats 3 once stripped
    details = _problems(text)
    assert [d["line"] for d in details] == [5, 7]
    assert "line 2" in str(details[0]["message"])
    assert "line 3" in str(details[1]["message"])


def test_message_lists_lines_and_counts_the_rest() -> None:
    text = HEAD + "\n" + "\n".join(f"+{n},X,any,0.01,0,60" for n in range(25)) + "\n"
    with pytest.raises(DomainError) as e:
        parse_deck(text)
    assert "line 2:" in e.value.message
    assert "line 21:" in e.value.message
    assert "line 22:" not in e.value.message
    assert "(and 5 more)" in e.value.message
    assert [d["line"] for d in e.value.details or []] == list(range(2, 27))


def test_non_ascii_digit_increment_is_a_validation_error() -> None:
    details = _problems(f"{HEAD}\n1,US,any,0.02,0,²\n")
    assert [d["line"] for d in details] == [2]
