"""Rate decks and the price of a call.

A deck (one per currency) maps E.164 prefixes and number types to a per-minute rate, a
connection fee and a billing increment. Lookup walks the dialled number's own prefixes from
longest to shortest in a hash map, so it costs at most 15 probes whatever the deck's size.

Charge for an answered call of ``d`` seconds::

    connection_fee + ceil(d / increment) * increment * per_minute / 60

computed exactly, then rounded **half up** to the currency's minor unit (cents) once per
call. An unanswered call (``d = 0``) costs nothing.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from commcredits.domain import text
from commcredits.domain.errors import DomainError, file_refused
from commcredits.domain.money import ZERO, round_half_up

MAX_DECK_ROWS = 100_000  # every lookup probes an in-memory deck; keep it bounded
HEADER = ["prefix", "destination", "number_type", "per_minute", "connection_fee", "increment_s"]
NUMBER_TYPES = frozenset({"geographic", "mobile", "toll_free", "premium", "any",
                          "toll_free_inbound", "sms"})
MAX_PREFIX = 15
_PREFIX = re.compile(r"[0-9]{1,15}")
_RATE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")
_INCREMENT = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True, slots=True)
class Rate:
    prefix: str
    destination: str
    number_type: str
    per_minute: Decimal
    connection_fee: Decimal
    increment_s: int

    def charge(self, duration_s: int, currency: str, *, with_fee: bool = True) -> Decimal:
        if duration_s <= 0:
            return ZERO
        billed = math.ceil(duration_s / self.increment_s) * self.increment_s
        exact = (self.connection_fee if with_fee else ZERO) + billed * self.per_minute / 60
        return round_half_up(exact, currency)

    def seconds_for(self, amount: Decimal, currency: str, *, with_fee: bool = True) -> int | None:
        """The longest duration (a whole number of increments) whose charge fits in ``amount``;
        None when the rate is free per minute (no limit). 0 when not even the fee fits."""
        fee = self.connection_fee if with_fee else ZERO
        if amount < round_half_up(fee, currency) or amount <= ZERO:
            return 0
        if self.per_minute == ZERO:
            return None
        per_increment = self.increment_s * self.per_minute / 60
        units = int((amount - fee) / per_increment)
        # rounding to the minor unit can make the estimate one or two increments off
        while units > 0 and self.cost(units, currency, with_fee) > amount:
            units -= 1
        while self.cost(units + 1, currency, with_fee) <= amount:
            units += 1
        return units * self.increment_s

    def cost(self, increments: int, currency: str, with_fee: bool) -> Decimal:
        return self.charge(increments * self.increment_s, currency, with_fee=with_fee)


class RateDeck:
    """Prefix → number type → Rate. Immutable once built."""

    def __init__(self, currency: str, rates: Iterable[Rate]) -> None:
        self.currency = currency
        self._by_prefix: dict[str, dict[str, Rate]] = {}
        self.size = 0
        for rate in rates:
            self._by_prefix.setdefault(rate.prefix, {})[rate.number_type] = rate
            self.size += 1

    def lookup(self, digits: str, number_type: str) -> Rate | None:
        """Longest prefix of ``digits`` with a row for ``number_type`` (or ``any``).

        ``toll_free_inbound`` and ``sms`` rows never stand in for each other or for ``any``.
        """
        special = number_type in {"toll_free_inbound", "sms"}
        for length in range(min(len(digits), MAX_PREFIX), 0, -1):
            rows = self._by_prefix.get(digits[:length])
            if rows is None:
                continue
            found = rows.get(number_type) or (None if special else rows.get("any"))
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class ImportProblem:
    line: int
    message: str


def parse_deck(text: str) -> list[Rate]:
    """Parse a whole CSV deck or raise ``validation_error`` listing every bad line (a file
    that is not CSV at all, e.g. a stray carriage return inside a field, names its line)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        return _parse_deck(reader)
    except csv.Error as e:
        raise _deck_error([ImportProblem(max(reader.line_num, 1), f"not valid CSV: {e}")]) \
            from None


def _parse_deck(reader: Any) -> list[Rate]:
    problems: list[ImportProblem] = []
    rates: list[Rate] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        header = []
    if header != HEADER:
        raise _deck_error([ImportProblem(1, f"header must be {','.join(HEADER)}")])
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(rates) + len(problems) >= MAX_DECK_ROWS:
            raise _deck_error([ImportProblem(line_no, f"a deck holds at most {MAX_DECK_ROWS} "
                                                      "rates")])
        rate, problem = _parse_row(row, line_no)
        if problem:
            problems.append(problem)
            continue
        assert rate is not None
        key = (rate.prefix, rate.number_type)
        if key in seen:
            problems.append(ImportProblem(line_no, f"prefix {rate.prefix} {rate.number_type} "
                                                   f"repeats line {seen[key]}"))
            continue
        seen[key] = line_no
        rates.append(rate)
    if problems:
        raise _deck_error(problems)
    if not rates:
        raise _deck_error([ImportProblem(2, "the deck has no rows")])
    return rates


def _parse_row(row: list[str], line: int) -> tuple[Rate | None, ImportProblem | None]:
    if len(row) != len(HEADER):
        return None, ImportProblem(line, f"expected {len(HEADER)} columns, found {len(row)}")
    prefix, destination, number_type, per_minute, fee, increment = (c.strip() for c in row)
    if not _PREFIX.fullmatch(prefix):
        return None, ImportProblem(line, f"prefix {prefix!r} must be 1-15 digits without +")
    if not destination:
        return None, ImportProblem(line, "destination is empty")
    if problem := text.text_problem(destination, 200):
        return None, ImportProblem(line, f"destination {problem}")
    if number_type not in NUMBER_TYPES:
        return None, ImportProblem(line, f"number_type {number_type!r} is not one of "
                                         f"{', '.join(sorted(NUMBER_TYPES))}")
    for name, value in (("per_minute", per_minute), ("connection_fee", fee)):
        if not _RATE.fullmatch(value):
            return None, ImportProblem(line, f"{name} {value!r} must be a decimal ≥ 0 with at "
                                             "most 6 places")
    if not _INCREMENT.fullmatch(increment) or not 1 <= int(increment) <= 3600:
        return None, ImportProblem(line, f"increment_s {increment!r} must be 1-3600 seconds")
    try:
        return Rate(prefix, destination, number_type, Decimal(per_minute), Decimal(fee),
                    int(increment)), None
    except InvalidOperation:
        return None, ImportProblem(line, "not a number")


def _deck_error(problems: list[ImportProblem]) -> DomainError:
    return file_refused("rate deck refused, nothing imported",
                        [(p.line, p.message) for p in problems])
