"""Tenants: create, read, change commerce model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commcredits.domain import tenancy
from commcredits.domain.errors import invalid, not_found
from commcredits.domain.money import is_currency
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
    uow.tenants.set_commerce(tenant_id, new)
    return get_tenant(uow, tenant_id)


def _commerce(value: str) -> Commerce:
    try:
        return Commerce(value)
    except ValueError:
        raise invalid("validation_error", "commerce must be 'legacy' or 'nce'") from None
