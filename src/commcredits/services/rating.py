"""Rate decks: import (all-or-nothing) and lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commcredits.domain import numbers, rating
from commcredits.domain.errors import DomainError, ErrorKind, invalid
from commcredits.domain.money import fmt_rate, is_currency
from commcredits.domain.rating import Rate

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def check_currency(currency: str) -> str:
    code = currency.upper()
    if not is_currency(code):
        raise invalid("validation_error", f"{currency!r} is not an ISO 4217 currency")
    return code


def import_deck(uow: UnitOfWork, currency: str, text: str) -> dict[str, Any]:
    """Replace the currency's deck with the CSV ``text``; any bad line refuses the whole file."""
    code = check_currency(currency)
    rates = rating.parse_deck(text)
    version = uow.rates.replace(code, rates, uow.now)
    return {"currency": code, "rows": len(rates), "version": version}


def rate_view(rate: Rate, currency: str) -> dict[str, Any]:
    return {"prefix": rate.prefix, "destination": rate.destination,
            "number_type": rate.number_type, "per_minute": fmt_rate(rate.per_minute),
            "connection_fee": fmt_rate(rate.connection_fee), "increment_s": rate.increment_s,
            "currency": currency}


def lookup(uow: UnitOfWork, currency: str, number: str, number_type: str | None = None
           ) -> dict[str, Any]:
    code = check_currency(currency)
    deck = uow.rates.deck(code)
    if deck is None:
        raise DomainError("not_found", f"no rate deck for {code}", ErrorKind.NOT_FOUND)
    parsed = numbers.classify(number)
    kind = number_type or parsed.number_type
    if kind not in rating.NUMBER_TYPES:
        raise invalid("validation_error", f"number_type must be one of "
                                          f"{', '.join(sorted(rating.NUMBER_TYPES))}")
    rate = deck.lookup(parsed.digits, kind)
    if rate is None:
        raise DomainError("no_rate", f"no rate for {parsed.e164} ({kind}) in the {code} deck",
                          ErrorKind.NOT_FOUND)
    return {**rate_view(rate, code), "number": parsed.e164, "country": parsed.country}
