"""Background jobs. Each is safe to run at any time, from any number of instances: the work
for one tenant happens in one transaction under that tenant's wallet lock, and everything it
does is keyed so that a second run finds nothing left to do.

* ``expire``: forfeit what is left in lots past their 12-month expiry (ledger kind
  ``expiry``), send ``lot_expired``; and warn 30 days ahead with ``lot_expiring``.
* ``recharge``: attempt due auto-recharges (first tries and the 1 h / 6 h / 24 h retries).
* ``pools``: open the new month's pool counters at zero (the monthly reset).
* ``calls``: release authorizations never answered (``auth_ttl_s``); settle answered calls
  the switch went silent on (at what it last reported, or the grant, by policy).
* ``cuts``: push the calls switches must end now to their webhook (retries).
* ``notify``: deliver the outbox over SMTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain import notifications as notes
from commcredits.domain.call_clock import SilentCharge
from commcredits.domain.money import ZERO, fmt
from commcredits.services import cuts, ledger, notify, recharge, settlement
from commcredits.services import pools as pools_service
from commcredits.services.ports import Mailer, PaymentGateway, SwitchNotifier
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database


@dataclass
class JobContext:
    db: Database
    mailer: Mailer | None
    gateway: PaymentGateway | None = None
    max_recharges_per_day: int = 5
    call_grace_s: int = 60
    call_idle_s: int = 4 * 3600
    auth_ttl_s: int = 120
    silent_charge: SilentCharge = SilentCharge.REPORTED
    switch: SwitchNotifier | None = None


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
            live = sum((lot.remaining for lot in uow.credits.lots(tid)
                        if lot.is_live(uow.now)), ZERO)
            cuts.cover_reservations(uow, wallet, live)  # money gone under reservations
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


def run_recharges(ctx: JobContext) -> int:
    if ctx.gateway is None:
        return 0
    return recharge.run_due(ctx.db, ctx.gateway, ctx.max_recharges_per_day)


def settle_silent_calls(ctx: JobContext) -> int:
    return settlement.settle_stale_calls(ctx.db, ctx.call_grace_s, ctx.call_idle_s,
                                         ctx.auth_ttl_s, ctx.silent_charge)


def push_cuts(ctx: JobContext) -> int:
    return cuts.deliver(ctx.db, ctx.switch)


def open_month(ctx: JobContext) -> int:
    """Create this month's zeroed counters for every pool used last month."""
    with ctx.db.uow() as uow:
        opened = pools_service.open_month(uow)
        uow.commit()
    return opened


JOBS: dict[str, list[Callable[[JobContext], int]]] = {
    "expire": [warn_expiring, expire_lots],
    "calls": [settle_silent_calls],
    "cuts": [push_cuts],
    "recharge": [run_recharges],
    "pools": [open_month],
    "notify": [deliver],
}
# expiry and silent calls first (they change balances), then the recharges they may start,
# notify last: it sends what the others queued
ORDER = ("expire", "calls", "cuts", "recharge", "pools", "notify")


def run(ctx: JobContext, which: str = "all") -> dict[str, int]:
    names = ORDER if which == "all" else (which,)
    if any(n not in JOBS for n in names):
        raise ValueError(f"unknown job {which!r}; choose from {', '.join(ORDER)} or all")
    return {name: sum(job(ctx) for job in JOBS[name]) for name in names}
