"""Exact money: ``decimal.Decimal`` amounts tied to an ISO 4217 currency.

* Amounts are never floats. Parsing refuses floats and refuses more decimal places than the
  currency has (``12.345`` USD is an error, not a rounding).
* A currency's number of decimal places comes from Babel's CLDR data (USD 2, JPY 0, BHD 3).
* On the wire an amount is a string rendered with exactly the currency's places (``"12.50"``).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

from commcredits.domain.errors import invalid

ZERO = Decimal(0)
# integer digits: below a trillion in any currency. Storage keeps millionths in a signed
# 64-bit integer (limit 9.2 trillion), so every amount that parses can be stored, and so can
# the sum of any few of them.
MAX_DIGITS = 12
_DECIMAL = re.compile(rf"[+-]?[0-9]{{1,{MAX_DIGITS}}}(\.[0-9]{{1,12}})?")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")  # any plain decimal number, however long
MAX_AMOUNT = Decimal(10) ** MAX_DIGITS - 1  # the largest amount with MAX_DIGITS digits


@lru_cache(maxsize=512)
def is_currency(code: str) -> bool:
    return len(code) == 3 and code.isupper() and code in list_currencies()


@lru_cache(maxsize=1)
def currency_codes() -> tuple[str, ...]:
    """Every code :func:`is_currency` accepts, sorted (what the OpenAPI lists)."""
    return tuple(sorted(c for c in list_currencies() if is_currency(c)))


@lru_cache(maxsize=512)
def places(currency: str) -> int:
    """Decimal places of ``currency`` (2 for USD, 0 for JPY)."""
    return int(get_currency_precision(currency))


@lru_cache(maxsize=512)
def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-places(currency))


def parse_amount(value: object, currency: str, *, field: str = "amount",
                 maximum: Decimal | None = None) -> Decimal:
    """Turn a JSON/CLI value into an exact amount in ``currency``.

    Accepts a plain decimal string (``"50"``, ``"50.00"``, ASCII digits, no exponent or
    separators), an int or a Decimal; refuses floats, NaN/Infinity, and more places than the
    currency allows. A number with more than :data:`MAX_DIGITS` integer digits is refused as
    above ``maximum`` (the caller's limit, e.g. the largest order; else the largest amount
    stored), not as "not a number".
    """
    if isinstance(value, bool | float):
        raise invalid("validation_error", f"{field} must be a decimal string such as \"50.00\"")
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            if _NUMBER.fullmatch(text) and len(text) <= 200:
                big = Decimal(text)
                if big > MAX_AMOUNT:
                    limit = MAX_AMOUNT if maximum is None else maximum
                    raise invalid("amount_above_maximum",
                                  f"{field} {text[:40]} is above the maximum of {limit}")
                if big < -MAX_AMOUNT:
                    raise invalid("validation_error", f"{field} {text[:40]} is out of range")
            else:
                raise invalid("validation_error",
                              f"{field} {value[:40]!r} is not a decimal number like \"50.00\"")
        amount = Decimal(text)
    else:
        raise invalid("validation_error", f"{field} must be a decimal string")
    if not amount.is_finite():
        raise invalid("validation_error", f"{field} must be a finite number")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    try:
        if exponent < -places(currency) and amount != amount.quantize(quantum(currency)):
            raise invalid(
                "validation_error",
                f"{field} {value} has more decimal places than {currency} allows "
                f"({places(currency)})",
            )
        return to_currency(amount, currency)
    except InvalidOperation:  # more digits than the decimal context holds
        raise invalid("validation_error", f"{field} {value} is too large") from None


def to_currency(amount: Decimal, currency: str) -> Decimal:
    """Quantize an amount that is already exact to the currency's places (no loss allowed)."""
    q = amount.quantize(quantum(currency))
    if q != amount:
        raise ValueError(f"{amount} is not exact in {currency}")
    return q


def round_half_up(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def fmt(amount: Decimal, currency: str) -> str:
    """Wire format: the amount with exactly the currency's decimal places, as a string.
    Anything finer than the currency rounds half up, the one rule for every figure shown."""
    return f"{amount.quantize(quantum(currency), rounding=ROUND_HALF_UP):f}"


def fmt_rate(rate: Decimal) -> str:
    """A price that may have more places than the currency (0.0125): at least two places."""
    cents = rate.quantize(Decimal("0.01"))
    return f"{cents if cents == rate else rate.normalize():f}"
