"""Auto-recharge: one recharge per fall below the trigger, retried after 1 h, 6 h and 24 h,
then suspended; at most ``max_per_day`` successful recharges per tenant per UTC day (a
guardrail against toll fraud draining a card)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from commcredits.domain import notifications as notes
from commcredits.domain.errors import DomainError
from commcredits.domain.events import EventKind
from commcredits.domain.lots import LotSource
from commcredits.domain.money import fmt
from commcredits.domain.wallet import AutoRecharge, RechargeStatus
from commcredits.services import events, notify
from commcredits.services.ids import new_id
from commcredits.services.ports import PaymentGateway
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import Database, UnitOfWork
    from commcredits.domain.tenancy import Tenant

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


def attempt(db: Database, tenant_id: str, gateway: PaymentGateway, max_per_day: int) -> str:
    """Try the tenant's due recharge once. Returns what happened (for logs and tests).

    The payment attempt is recorded first, the card charged with no transaction open, and
    the answer settled by ``payments.settle`` (which calls ``funded`` or ``refused``)."""
    from commcredits.services import payments

    with db.uow() as uow:
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
            uow.commit()
            return "cancelled"
        if uow.charging.recharges_since(tenant_id, _day_start(uow.now)) >= max_per_day:
            uow.charging.update_recharge(pending.id, status="capped", updated_at=uow.now,
                                         next_attempt_at=None)
            notify.queue(uow, tenant, notes.recharge_capped(tenant.name, max_per_day,
                                                            pending.id))
            uow.commit()
            return "capped"
        open_attempt = uow.payments.for_recharge(pending.id)  # an interrupted try resumes
        attempt_id = open_attempt.id if open_attempt is not None else payments.begin(
            uow, tenant_id, LotSource.AUTO_RECHARGE,
            settings.recharge_amount or pending.amount, settings.payment_method_id,
            recharge_id=pending.id)
        uow.commit()
    _, result, _ = payments.charge_and_settle(db, gateway, attempt_id)
    return str(result or "settled_elsewhere")


def funded(uow: UnitOfWork, wallet: WalletRow, tenant: Tenant, recharge_id: str,
           amount: Decimal, order_id: str) -> str:
    """The recharge's payment went through (called by ``payments.settle``)."""
    row = uow.payments.recharge(recharge_id)
    uow.charging.update_recharge(recharge_id, status="succeeded", attempts=row.attempts + 1,
                                 order_id=order_id, updated_at=uow.now,
                                 next_attempt_at=None, last_error=None)
    cur = tenant.currency
    notify.queue(uow, tenant, notes.recharge_succeeded(
        tenant.name, fmt(amount, cur), cur, fmt(wallet.balance, cur), recharge_id))
    events.record(uow, tenant.id, EventKind.RECHARGE_SUCCEEDED,
                  f"recharge_succeeded:{recharge_id}",
                  {"recharge_id": recharge_id, "order_id": order_id, "currency": cur,
                   "amount": fmt(amount, cur), "balance": fmt(wallet.balance, cur)})
    return "succeeded"


def refused(uow: UnitOfWork, wallet: WalletRow, tenant: Tenant, recharge_id: str,
            amount: Decimal, error: DomainError) -> str:
    """The recharge's payment was refused: retry after 1 h, 6 h, 24 h, then suspend."""
    row = uow.payments.recharge(recharge_id)
    cur = tenant.currency
    tries = row.attempts + 1
    retry_at = uow.now + RETRY_AFTER[tries - 1] if tries <= len(RETRY_AFTER) else None
    events.record(uow, tenant.id, EventKind.RECHARGE_FAILED,
                  f"recharge_failed:{recharge_id}:{tries}",
                  {"recharge_id": recharge_id, "attempt": tries, "currency": cur,
                   "amount": fmt(amount, cur), "reason": error.code,
                   "retry_at": retry_at.isoformat() if retry_at else None,
                   "suspended": retry_at is None})
    if tries > len(RETRY_AFTER):
        uow.charging.update_recharge(recharge_id, status="abandoned", attempts=tries,
                                     last_error=error.code, updated_at=uow.now,
                                     next_attempt_at=None)
        wallet.auto_recharge = _with_status(wallet.auto_recharge, RechargeStatus.SUSPENDED)
        uow.tenants.save_wallet(wallet)
        notify.queue(uow, tenant, notes.recharge_suspended(
            tenant.name, fmt(amount, cur), cur, error.code, recharge_id))
        return "suspended"
    assert retry_at is not None
    uow.charging.update_recharge(recharge_id, status="failed", attempts=tries,
                                 last_error=error.code, updated_at=uow.now,
                                 next_attempt_at=retry_at)
    notify.queue(uow, tenant, notes.recharge_failed(
        tenant.name, fmt(amount, cur), cur, error.code, retry_at.isoformat(), recharge_id,
        tries))
    return "failed"


def _with_status(settings: AutoRecharge, status: RechargeStatus) -> AutoRecharge:
    return replace(settings, status=status)


def run_due(db: Database, gateway: PaymentGateway, max_per_day: int,
            tenant_id: str | None = None) -> int:
    """Attempt every due recharge (or one tenant's). Returns how many succeeded."""
    with db.uow() as uow:
        due = [tenant_id] if tenant_id else uow.charging.due_recharges(uow.now)
    return sum(attempt(db, tid, gateway, max_per_day) == "succeeded" for tid in due)
