"""Background jobs. Each is safe to run at any time, from any number of instances: the work
for one tenant happens in one transaction under that tenant's wallet lock, and everything it
does is keyed so that a second run finds nothing left to do.

* ``expire``: forfeit what is left in lots past their 12-month expiry (ledger kind
  ``expiry``), send ``lot_expired``; and warn 30 days ahead with ``lot_expiring``.
* ``recharge``: attempt due auto-recharges (first tries and the 1 h / 6 h / 24 h retries).
* ``payments``: settle card payments a crash left pending (charged again with the same
  idempotency key, then funded).
* ``pools``: open the new month's pool counters at zero (the monthly reset).
* ``statements``: once a month is over, queue each tenant's ``monthly_statement`` notice
  (once per tenant and month across the cluster: a claimed row of ``statement_mailings``).
* ``calls``: release authorizations never answered (``auth_ttl_s``); settle answered calls
  the switch went silent on (at what it last reported, or the grant, by policy).
* ``cuts``: push the calls switches must end now to their webhook (retries).
* ``notify``: deliver the outbox over SMTP.
* ``events``: publish the domain events outbox to NATS JetStream (when
  ``COMMCREDITS_NATS_URL`` is set).

Failures are isolated: a row (a tenant's lots, a call, a recharge) whose work raises is
rolled back, reported through ``JobContext.failed`` (a log line and the
``commcredits_job_failures_total`` counter in ``/metrics``) and skipped; the other rows and
the other jobs go on, and the row is tried again at the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain import notifications as notes
from commcredits.domain.call_clock import SilentCharge
from commcredits.domain.events import DEFAULT_PREFIX, EventKind
from commcredits.domain.money import fmt
from commcredits.services import (
    cuts,
    events,
    ledger,
    notify,
    payments,
    recharge,
    settlement,
    statement_mail,
)
from commcredits.services import pools as pools_service
from commcredits.services.ports import EventBus, Mailer, PaymentGateway, SwitchNotifier
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

log = logging.getLogger(__name__)


def log_failure(job: str, row: str | None, exc: BaseException) -> None:
    where = f"row {row}" if row is not None else "the whole job"
    log.error("job %s failed on %s: %s: %s", job, where, type(exc).__name__, exc,
              exc_info=exc)


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
    bus: EventBus | None = None  # where domain events are published (None: nowhere)
    events_prefix: str = DEFAULT_PREFIX
    # told of every failure: (job, row id or None for the whole job, the exception)
    failed: Callable[[str, str | None, BaseException], None] = field(default=log_failure)


def each(ctx: JobContext, job: str, rows: Iterable[str], work: Callable[[str], Any]) -> int:
    """Run ``work`` for every row on its own; a row that raises is reported and skipped.
    Returns the sum of what the rows returned (True counts 1)."""
    done = 0
    for row in rows:
        try:
            done += int(work(row) or 0)
        except Exception as exc:  # isolate: the next row and the next job still run
            ctx.failed(job, row, exc)
    return done


def expire_lots(ctx: JobContext) -> int:
    """Forfeit expired remainders. Returns the number of lots expired."""
    with ctx.db.uow() as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now)

    def one(tid: str) -> int:
        expired = 0
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
                events.record(uow, tid, EventKind.LOT_EXPIRED, f"lot_expired:{draw.lot_id}",
                              {"lot_id": draw.lot_id, "currency": tenant.currency,
                               "forfeited": fmt(draw.amount, tenant.currency),
                               "balance": fmt(wallet.balance, tenant.currency)})
                expired += 1
            cuts.cover_reservations(uow, wallet)  # money gone under reservations
            uow.commit()
        return expired
    return each(ctx, "expire", tenant_ids, one)


def warn_expiring(ctx: JobContext) -> int:
    """Queue ``lot_expiring`` once per lot, 30 days before it expires."""
    with ctx.db.uow() as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now + lotrules.EXPIRING_NOTICE)

    def one(tid: str) -> int:
        warned = 0
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
    return each(ctx, "expire", tenant_ids, one)


def deliver(ctx: JobContext) -> int:
    return notify.deliver_due(ctx.db, ctx.mailer)


def run_recharges(ctx: JobContext) -> int:
    if ctx.gateway is None:
        return 0
    gateway = ctx.gateway
    with ctx.db.uow() as uow:
        due = uow.charging.due_recharges(uow.now)
    return each(ctx, "recharge", due, lambda tid: recharge.run_due(
        ctx.db, gateway, ctx.max_recharges_per_day, tid))


def reconcile_payments(ctx: JobContext) -> int:
    """Settle card payments a crash left pending (``services.payments.reconcile``)."""
    if ctx.gateway is None:
        return 0
    done = payments.reconcile(ctx.db, ctx.gateway,
                              failed=lambda row, exc: ctx.failed("payments", row, exc))
    return sum(r.outcome == "funded" for r in done)


def settle_silent_calls(ctx: JobContext) -> int:
    """Lapse unanswered authorizations and settle the calls the switch went silent on,
    each in its own transaction."""
    with ctx.db.uow() as uow:
        candidates = [c.call_id for c in uow.charging.active_calls()]

    def one(call_id: str) -> bool:
        with ctx.db.uow() as uow:
            call = uow.charging.call(call_id, lock=True)
            if call is None or call.status != "active" or not settlement.settle_stale(
                    uow, call, ctx.call_grace_s, ctx.call_idle_s, ctx.auth_ttl_s,
                    ctx.silent_charge):
                return False
            uow.commit()
            return True
    return each(ctx, "calls", candidates, one)


def push_cuts(ctx: JobContext) -> int:
    return cuts.deliver(ctx.db, ctx.switch)


def publish_events(ctx: JobContext) -> int:
    """Publish the domain events outbox to JetStream (``services.events``)."""
    if ctx.bus is None:
        return 0
    return events.publish_due(ctx.db, ctx.bus, ctx.events_prefix)


def open_month(ctx: JobContext) -> int:
    """Create this month's zeroed counters for every pool used last month."""
    with ctx.db.uow() as uow:
        opened = pools_service.open_month(uow)
        uow.commit()
    return opened


def mail_statements(ctx: JobContext) -> int:
    """Queue the last closed month's ``monthly_statement`` notice, once per tenant and month
    across every instance (``services.statement_mail``). Returns the notices queued."""
    with ctx.db.uow() as uow:
        month = statement_mail.last_closed_month(uow)
        tenant_ids = statement_mail.due(uow, month)

    def one(tid: str) -> int:
        with ctx.db.uow() as uow:
            queued = statement_mail.mail_one(uow, tid, month)
            uow.commit()
        return queued
    return each(ctx, "statements", tenant_ids, one)


JOBS: dict[str, list[Callable[[JobContext], int]]] = {
    "expire": [warn_expiring, expire_lots],
    "calls": [settle_silent_calls],
    "cuts": [push_cuts],
    "recharge": [run_recharges],
    "payments": [reconcile_payments],
    "pools": [open_month],
    "statements": [mail_statements],
    "notify": [deliver],
    "events": [publish_events],
}
# expiry and silent calls first (they change balances), then the recharges they may start,
# notify and events last: they send what the others queued
ORDER = ("expire", "calls", "cuts", "recharge", "payments", "pools", "statements", "notify",
         "events")


def run(ctx: JobContext, which: str = "all") -> dict[str, int]:
    names = ORDER if which == "all" else (which,)
    if any(n not in JOBS for n in names):
        raise ValueError(f"unknown job {which!r}; choose from {', '.join(ORDER)} or all")
    done: dict[str, int] = {}
    for name in names:
        done[name] = 0
        for job in JOBS[name]:
            try:
                done[name] += job(ctx)
            except Exception as exc:  # e.g. the database is away: the other jobs still run
                ctx.failed(name, None, exc)
    return done
