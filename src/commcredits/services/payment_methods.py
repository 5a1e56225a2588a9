"""Payment methods an admin manages: remove one (it stays on the orders that used it) and
choose the default. Adding them is ``services.credits.add_card``/``add_agreement``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commcredits.domain.errors import conflict, not_found
from commcredits.services import audit
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.uow import UnitOfWork


def _get(uow: UnitOfWork, tenant_id: str, pm_id: str) -> sa.Row:
    get_tenant(uow, tenant_id)
    row = uow.credits.payment_method(tenant_id, pm_id)
    if row is None:
        raise not_found("payment method", pm_id)
    return row


def remove(uow: UnitOfWork, tenant_id: str, pm_id: str) -> None:
    """Remove a payment method; refused while auto-recharge pays with it."""
    _get(uow, tenant_id, pm_id)
    ar = uow.tenants.wallet(tenant_id).auto_recharge
    if ar.enabled and ar.payment_method_id == pm_id:
        raise conflict("payment_method_in_use", "auto-recharge pays with this payment method: "
                       "choose another one for auto-recharge or turn it off first")
    uow.credits.remove_payment_method(tenant_id, pm_id, uow.now)
    audit.record(uow, tenant_id, "payment_method.remove", pm_id, {"removed": False},
                 {"removed": True})


def set_default(uow: UnitOfWork, tenant_id: str, pm_id: str) -> None:
    _get(uow, tenant_id, pm_id)
    before = next((r.id for r in uow.credits.payment_methods(tenant_id) if r.is_default), None)
    uow.credits.set_default_payment_method(tenant_id, pm_id)
    audit.record(uow, tenant_id, "payment_method.default", "default payment method",
                 before, pm_id)


def default_id(uow: UnitOfWork, tenant_id: str) -> str | None:
    """The default payment method, else the newest one, else None."""
    rows = uow.credits.payment_methods(tenant_id)
    chosen = next((r for r in rows if r.is_default), rows[-1] if rows else None)
    return None if chosen is None else chosen.id
