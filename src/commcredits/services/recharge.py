"""Auto-recharge: one recharge per fall below the trigger, retried after 1 h, 6 h and 24 h,
then suspended; at most ``max_per_day`` successful recharges per tenant per UTC day (a
guardrail against toll fraud draining a card)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from commcredits.domain import notifications as notes
from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.lots import LotSource
from commcredits.domain.money import fmt
from commcredits.domain.wallet import AutoRecharge, RechargeStatus
from commcredits.services import notify
from commcredits.services.ids import new_id
from commcredits.services.ports import PaymentGateway
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import Database, UnitOfWork

RETRY_AFTER = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))


def request(uow: UnitOfWork, wallet: WalletRow) -> None:
    """Queue a recharge (runs right after the commit, and from the ``recharge`` job)."""
    if uow.charging.open_recharge(wallet.tenant_id) is not None:
        return
    amount = wallet.auto_recharge.recharge_amount
    assert amount is not None
    uow.charging.add_recharge(id=new_id("rch"), tenant_id=wallet.tenant_id, status="pending",
                              amount=amount, attempts=0, next_attempt_at=uow.now,
                              created_at=uow.now, updated_at=uow.now)
    uow.recharges_requested.add(wallet.tenant_id)


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def attempt(uow: UnitOfWork, tenant_id: str, gateway: PaymentGateway, max_per_day: int) -> str:
    """Try the tenant's due recharge once. Returns what happened (for logs and tests)."""
    from commcredits.services.credits import fund

    wallet = uow.tenants.wallet(tenant_id, lock=True)
    pending = uow.charging.open_recharge(tenant_id)
    if pending is None or (pending.next_attempt_at and pending.next_attempt_at > uow.now):
        return "nothing_due"
    tenant = get_tenant(uow, tenant_id)
    settings = wallet.auto_recharge
    if not settings.enabled or settings.status is not RechargeStatus.ACTIVE \
            or settings.payment_method_id is None:
        uow.charging.update_recharge(pending.id, status="cancelled", updated_at=uow.now,
                                     next_attempt_at=None)
        return "cancelled"
    if uow.charging.recharges_since(tenant_id, _day_start(uow.now)) >= max_per_day:
        uow.charging.update_recharge(pending.id, status="capped", updated_at=uow.now,
                                     next_attempt_at=None)
        notify.queue(uow, tenant, notes.recharge_capped(tenant.name, max_per_day, pending.id))
        return "capped"
    amount: Decimal = settings.recharge_amount or pending.amount
    pm = uow.credits.payment_method(tenant_id, settings.payment_method_id)
    cur = tenant.currency
    try:
        if pm is None:
            raise DomainError("payment_method_missing", "the payment method no longer exists",
                              ErrorKind.PAYMENT)
        funded = fund(uow, wallet, tenant, pm, amount, LotSource.AUTO_RECHARGE, gateway,
                      payment_key=f"{pending.id}:{pending.attempts}")
    except DomainError as e:
        if e.kind is not ErrorKind.PAYMENT:
            raise
        tries = pending.attempts + 1
        if tries > len(RETRY_AFTER):
            uow.charging.update_recharge(pending.id, status="abandoned", attempts=tries,
                                         last_error=e.code, updated_at=uow.now,
                                         next_attempt_at=None)
            wallet.auto_recharge = _with_status(settings, RechargeStatus.SUSPENDED)
            uow.tenants.save_wallet(wallet)
            notify.queue(uow, tenant, notes.recharge_suspended(
                tenant.name, fmt(amount, cur), cur, e.code, pending.id))
            return "suspended"
        retry_at = uow.now + RETRY_AFTER[tries - 1]
        uow.charging.update_recharge(pending.id, status="failed", attempts=tries,
                                     last_error=e.code, updated_at=uow.now,
                                     next_attempt_at=retry_at)
        notify.queue(uow, tenant, notes.recharge_failed(
            tenant.name, fmt(amount, cur), cur, e.code, retry_at.isoformat(), pending.id, tries))
        return "failed"
    uow.charging.update_recharge(pending.id, status="succeeded", attempts=pending.attempts + 1,
                                 order_id=funded.order_id, updated_at=uow.now,
                                 next_attempt_at=None, last_error=None)
    notify.queue(uow, tenant, notes.recharge_succeeded(
        tenant.name, fmt(amount, cur), cur, fmt(wallet.balance, cur), pending.id))
    return "succeeded"


def _with_status(settings: AutoRecharge, status: RechargeStatus) -> AutoRecharge:
    return replace(settings, status=status)


def run_due(db: Database, gateway: PaymentGateway, max_per_day: int,
            tenant_id: str | None = None) -> int:
    """Attempt every due recharge (or one tenant's). Returns how many succeeded."""
    with db.uow() as uow:
        due = [tenant_id] if tenant_id else uow.charging.due_recharges(uow.now)
    done = 0
    for tid in due:
        with db.uow() as uow:
            outcome = attempt(uow, tid, gateway, max_per_day)
            uow.commit()
        done += outcome == "succeeded"
    return done
