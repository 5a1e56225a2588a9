"""JSON shapes of API.md for domain objects."""

from __future__ import annotations

from typing import Any

from commcredits.adapters.db.repositories.directory import User
from commcredits.domain.money import fmt
from commcredits.domain.tenancy import Tenant


def tenant(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "country": t.country, "currency": t.currency,
            "commerce": t.commerce.value, "allow_premium": t.allow_premium,
            "blocked_prefixes": sorted(t.blocked_prefixes),
            "user_daily_cap": None if t.user_daily_cap is None
            else fmt(t.user_daily_cap, t.currency),
            "overage_enabled": t.overage_enabled, "no_rate": t.no_rate}


def user(u: User) -> dict[str, Any]:
    return {"id": u.id, "upn": u.upn, "display_name": u.display_name,
            "usage_location": u.usage_location, "phone_number": u.phone_number,
            "aad_object_id": u.aad_object_id, "licenses": sorted(u.licenses)}


def subscription(sku: str, quantity: int, assigned: int) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "assigned": assigned}
