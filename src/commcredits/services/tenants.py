"""Tenants: create, read, change commerce model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commcredits.domain import tenancy
from commcredits.domain.calls import NO_RATE_POLICIES
from commcredits.domain.errors import invalid, not_found
from commcredits.domain.money import is_currency, parse_amount
from commcredits.domain.tenancy import Commerce, Tenant
from commcredits.services.ids import new_id

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def create_tenant(uow: UnitOfWork, name: str, country: str, commerce: str,
                  currency: str | None = None) -> Tenant:
    if not name.strip():
        raise invalid("validation_error", "name must not be empty")
    country = tenancy.check_country(country)
    model = _commerce(commerce)
    if currency is None:
        currency = tenancy.currency_for_country(country, uow.now.date())
    elif not is_currency(currency.upper()):
        raise invalid("validation_error", f"currency {currency!r} is not an ISO 4217 code")
    tenant = Tenant(new_id("tnt"), name.strip(), country, currency.upper(), model)
    uow.tenants.add(tenant, uow.now)
    return tenant


def get_tenant(uow: UnitOfWork, tenant_id: str) -> Tenant:
    tenant = uow.tenants.get(tenant_id)
    if tenant is None:
        raise not_found("tenant", tenant_id)
    return tenant


def change_commerce(uow: UnitOfWork, tenant_id: str, commerce: str) -> Tenant:
    tenant = get_tenant(uow, tenant_id)
    new = _commerce(commerce)
    wallet = uow.tenants.wallet(tenant_id, lock=True)
    tenancy.check_commerce_change(tenant.commerce, new, wallet.auto_recharge.enabled)
    uow.tenants.update(tenant_id, commerce=new.value)
    return get_tenant(uow, tenant_id)


KEEP = object()  # "leave as it is" (None means "no cap")


def set_call_policy(uow: UnitOfWork, tenant_id: str, allow_premium: bool | None,
                    blocked_prefixes: list[str] | None,
                    user_daily_cap: object = KEEP, *, overage_enabled: bool | None = None,
                    no_rate: str | None = None) -> Tenant:
    """Toll-fraud guardrails: premium destinations, prefixes never to call, and the most
    credits one user may spend per UTC day (None removes the cap); pay-as-you-go overage
    (nce) and what happens to calls no rate prices (``free`` or ``block``)."""
    tenant = get_tenant(uow, tenant_id)
    values: dict[str, object] = {}
    if overage_enabled is not None:
        values["overage_enabled"] = overage_enabled
    if no_rate is not None:
        if no_rate not in NO_RATE_POLICIES:
            raise invalid("validation_error", "no_rate must be 'free' or 'block'")
        values["no_rate"] = no_rate
    if user_daily_cap is not KEEP:
        cap = None if user_daily_cap is None else parse_amount(
            user_daily_cap, tenant.currency, field="user_daily_cap")
        if cap is not None and cap < 0:
            raise invalid("validation_error", "user_daily_cap must be zero or more")
        values["user_daily_cap"] = cap
    if allow_premium is not None:
        values["allow_premium"] = allow_premium
    if blocked_prefixes is not None:
        cleaned = sorted({p.strip().lstrip("+") for p in blocked_prefixes if p.strip()})
        if any(not p.isdigit() or len(p) > 15 for p in cleaned):
            raise invalid("validation_error", "blocked_prefixes are E.164 digit prefixes")
        values["blocked_prefixes"] = ",".join(cleaned)
    if values:
        uow.tenants.update(tenant_id, **values)
        from commcredits.services import cuts
        cuts.for_guardrails(uow, get_tenant(uow, tenant_id))  # calls now to blocked places
    return get_tenant(uow, tenant_id)


def _commerce(value: str) -> Commerce:
    try:
        return Commerce(value)
    except ValueError:
        raise invalid("validation_error", "commerce must be 'legacy' or 'nce'") from None
