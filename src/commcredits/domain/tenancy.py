"""Tenants: country → currency, commerce model, and where credits may be sold.

Currencies come from CLDR via Babel (the tender currency in use today for the territory),
never from a hand-written table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from babel import Locale
from babel.numbers import get_territory_currencies

from commcredits.domain.errors import conflict, invalid

#: Countries where communications credits cannot be bought (SPEC §2 Credits).
CREDITS_UNAVAILABLE_COUNTRIES = frozenset({"RU", "KR", "TW"})


class Commerce(StrEnum):
    LEGACY = "legacy"
    NCE = "nce"


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    return frozenset(code for code in Locale("en").territories if len(code) == 2 and code.isalpha())


def is_country(code: str) -> bool:
    return code in _countries() and code not in {"ZZ", "XK", "EU", "EZ", "UN", "QO"}


@lru_cache(maxsize=1)
def country_codes() -> tuple[str, ...]:
    """Every code :func:`is_country` accepts, sorted (what the OpenAPI lists)."""
    return tuple(sorted(c for c in _countries() if is_country(c)))


@lru_cache(maxsize=1)
def tenant_country_codes() -> tuple[str, ...]:
    """The countries a tenant can be created in without naming a currency: those with a
    tender currency today (CLDR)."""
    today = date.today()
    return tuple(c for c in country_codes()
                 if get_territory_currencies(c, start_date=today, tender=True))


def check_country(code: str, *, field: str = "country") -> str:
    if not isinstance(code, str) or not is_country(code.upper()):
        raise invalid("validation_error",
                      f"{field} {code!r} is not an ISO 3166 alpha-2 country code")
    return code.upper()


def currency_for_country(country: str, today: date) -> str:
    """The tender currency a country uses today (CLDR), e.g. US → USD, DE → EUR."""
    found = get_territory_currencies(country, start_date=today, tender=True)
    if not found:
        raise invalid("validation_error", f"no currency is known for country {country!r}")
    return str(found[0])


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    country: str
    currency: str
    commerce: Commerce
    allow_premium: bool = False  # premium-rate destinations are blocked unless allowed
    blocked_prefixes: frozenset[str] = frozenset()  # E.164 digit prefixes never to call
    user_daily_cap: Decimal | None = None  # most credits one user may spend per UTC day
    overage_enabled: bool = False  # nce: pay-as-you-go overage turned on (off by default)
    no_rate: str = "free"  # calls no rate prices: "free" (FREECALL) or "block" (no_rate)


def check_can_buy_credits(tenant: Tenant) -> None:
    """Raise unless the tenant may buy credits (orders and auto-recharge)."""
    if tenant.commerce is Commerce.NCE:
        raise conflict(
            "not_available_for_commerce_model",
            "communications credits cannot be bought on the new commerce model (nce); "
            "usage beyond included minutes is billed as overage",
        )
    if tenant.country in CREDITS_UNAVAILABLE_COUNTRIES:
        raise conflict(
            "not_available_in_country",
            f"communications credits are not sold to tenants in {tenant.country}",
        )


def check_commerce_change(current: Commerce, new: Commerce, auto_recharge_enabled: bool) -> None:
    """legacy → nce keeps the remaining credits but requires auto-recharge to be off."""
    if current is Commerce.LEGACY and new is Commerce.NCE and auto_recharge_enabled:
        raise conflict(
            "auto_recharge_enabled",
            "turn auto-recharge off before moving the tenant to the new commerce model",
        )
