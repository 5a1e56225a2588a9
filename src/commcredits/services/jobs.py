"""Background jobs. Each is safe to run at any time, from any number of instances: the work
for one tenant happens in one transaction under that tenant's wallet lock, and everything it
does is keyed so that a second run finds nothing left to do.

* ``expire``: forfeit what is left in lots past their 12-month expiry (ledger kind
  ``expiry``), send ``lot_expired``; and warn 30 days ahead with ``lot_expiring``.
* ``notify``: deliver the outbox over SMTP.
* ``recharge`` and ``pools`` belong to real-time charging (issue #3); they run and report 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain import notifications as notes
from commcredits.domain.money import fmt
from commcredits.services import ledger, notify
from commcredits.services.ports import Mailer
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database


@dataclass
class JobContext:
    db: Database
    mailer: Mailer | None


def expire_lots(ctx: JobContext) -> int:
    """Forfeit expired remainders. Returns the number of lots expired."""
    with ctx.db.uow() as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now)
    expired = 0
    for tid in tenant_ids:
        with ctx.db.uow() as uow:
            tenant = get_tenant(uow, tid)
            wallet = uow.tenants.wallet(tid, lock=True)
            for draw in lotrules.due_for_expiry(uow.credits.lots(tid), uow.now):
                txn = ledger_rules.spend(tid, [draw], ledger_rules.TxnKind.EXPIRY, "forfeited",
                                         reference=f"lot {draw.lot_id} expired")
                ledger.post(uow, wallet, txn)
                notify.queue(uow, tenant, notes.lot_expired(
                    tenant.name, draw.lot_id, fmt(draw.amount, tenant.currency),
                    tenant.currency, fmt(wallet.balance, tenant.currency)))
                expired += 1
            uow.commit()
    return expired


def warn_expiring(ctx: JobContext) -> int:
    """Queue ``lot_expiring`` once per lot, 30 days before it expires."""
    with ctx.db.uow() as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now + lotrules.EXPIRING_NOTICE)
    warned = 0
    for tid in tenant_ids:
        with ctx.db.uow() as uow:
            tenant = get_tenant(uow, tid)
            uow.tenants.wallet(tid, lock=True)
            done = uow.credits.expiring_notified(tid)
            for lot in lotrules.due_for_expiring_notice(uow.credits.lots(tid), uow.now):
                if lot.id in done:
                    continue
                notify.queue(uow, tenant, notes.lot_expiring(
                    tenant.name, lot.id, fmt(lot.remaining, tenant.currency), tenant.currency,
                    lot.expires_at.isoformat()))
                uow.credits.mark_expiring_notified(lot.id)
                warned += 1
            uow.commit()
    return warned


def deliver(ctx: JobContext) -> int:
    return notify.deliver_due(ctx.db, ctx.mailer)


def not_yet(ctx: JobContext) -> int:
    """Auto-recharge runs and pool resets arrive with real-time charging (issue #3)."""
    return 0


JOBS: dict[str, list[Callable[[JobContext], int]]] = {
    "expire": [warn_expiring, expire_lots],
    "recharge": [not_yet],
    "pools": [not_yet],
    "notify": [deliver],
}
ORDER = ("expire", "recharge", "pools", "notify")  # notify last: it sends what the others queued


def run(ctx: JobContext, which: str = "all") -> dict[str, int]:
    names = ORDER if which == "all" else (which,)
    if any(n not in JOBS for n in names):
        raise ValueError(f"unknown job {which!r}; choose from {', '.join(ORDER)} or all")
    return {name: sum(job(ctx) for job in JOBS[name]) for name in names}
