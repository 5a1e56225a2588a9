"""Background jobs. Each is safe to run at any time, from any number of instances: its work
happens in short transactions (one call, one cut, one message, or a bounded chunk of one
tenant's lots under that tenant's wallet lock), and everything it does is keyed so that a
second run finds nothing left to do. Between rows and chunks a job looks at
``JobContext.stopping`` and leaves the rest for the next run.

* ``expire``: forfeit what is left in lots past their 12-month expiry (ledger kind
  ``expiry``), send ``lot_expired``; and warn 30 days ahead with ``lot_expiring``; in
  chunks of ``COMMCREDITS_JOBS_CHUNK`` lots / ``COMMCREDITS_JOBS_CHUNK_S`` (``services.expiry``).
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

from commcredits.domain import lots as lotrules
from commcredits.domain.call_clock import SilentCharge
from commcredits.domain.events import DEFAULT_PREFIX
from commcredits.services import (
    cuts,
    events,
    expiry,
    notify,
    payments,
    recharge,
    settlement,
    statement_mail,
)
from commcredits.services import pools as pools_service
from commcredits.services.ports import EventBus, Mailer, PaymentGateway, SwitchNotifier

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
    chunk: int = 500  # lots (rows) per transaction of a bulk job
    chunk_s: float = 0.5  # a chunk ends early after this long
    # set when the process is stopping: jobs look at it between rows and chunks
    stopping: Callable[[], bool] = field(default=lambda: False)

    def chunks(self) -> expiry.Chunks:
        return expiry.Chunks(self.chunk, self.chunk_s, self.stopping)


def each(ctx: JobContext, job: str, rows: Iterable[str], work: Callable[[str], Any]) -> int:
    """Run ``work`` for every row on its own; a row that raises is reported and skipped.
    Returns the sum of what the rows returned (True counts 1)."""
    done = 0
    for row in rows:
        if ctx.stopping():  # the rest waits for the next run
            break
        try:
            done += int(work(row) or 0)
        except Exception as exc:  # isolate: the next row and the next job still run
            ctx.failed(job, row, exc)
    return done


def expire_lots(ctx: JobContext) -> int:
    """Forfeit expired remainders, tenant by tenant, in chunks (``services.expiry``).
    Returns the number of lots expired."""
    with ctx.db.uow(readonly=True) as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now)
    return each(ctx, "expire", tenant_ids,
                lambda tid: expiry.expire_tenant(ctx.db, tid, ctx.chunks()))


def warn_expiring(ctx: JobContext) -> int:
    """Queue ``lot_expiring`` once per lot, 30 days before it expires (in chunks)."""
    with ctx.db.uow(readonly=True) as uow:
        tenant_ids = uow.credits.tenants_with_lots_due(uow.now + lotrules.EXPIRING_NOTICE)
    return each(ctx, "expire", tenant_ids,
                lambda tid: expiry.warn_tenant(ctx.db, tid, ctx.chunks()))


def deliver(ctx: JobContext) -> int:
    return notify.deliver_due(ctx.db, ctx.mailer, stopping=ctx.stopping)


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
    return cuts.deliver(ctx.db, ctx.switch, stopping=ctx.stopping)


def publish_events(ctx: JobContext) -> int:
    """Publish the domain events outbox to JetStream (``services.events``)."""
    if ctx.bus is None:
        return 0
    return events.publish_due(ctx.db, ctx.bus, ctx.events_prefix, stopping=ctx.stopping)


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
    "calls": [settle_silent_calls],
    "expire": [warn_expiring, expire_lots],
    "cuts": [push_cuts],
    "recharge": [run_recharges],
    "payments": [reconcile_payments],
    "pools": [open_month],
    "statements": [mail_statements],
    "notify": [deliver],
    "events": [publish_events],
}
# the jobs that release money (lapsed authorizations, silent calls) and cut the calls whose
# money is gone: ``serve`` runs them in a loop of their own, so they never wait behind bulk work
URGENT = ("calls", "cuts")
# the rest, in a second loop: expiry first (it changes balances), then the recharges it may
# start; notify and events last: they send what the others queued
BULK = ("expire", "recharge", "payments", "pools", "statements", "notify", "events")
# ``jobs run all`` and ``POST /v1/clock`` (one pass, in this order): expiry and silent calls
# first (they change balances; expiry cuts calls whose reservation lost its money), then the
# cuts and the recharges they start; notify and events last: they send what the others queued
ORDER = ("expire", "calls", "cuts", "recharge", "payments", "pools", "statements", "notify",
         "events")


def run(ctx: JobContext, which: str | tuple[str, ...] = "all") -> dict[str, int]:
    """Run the named job (``all``: every job in :data:`ORDER`; a tuple: those) once."""
    names = ORDER if which == "all" else (which,) if isinstance(which, str) else which
    if any(n not in JOBS for n in names):
        raise ValueError(f"unknown job {which!r}; choose from {', '.join(ORDER)} or all")
    done: dict[str, int] = {}
    for name in names:
        done[name] = 0
        for job in JOBS[name]:
            if ctx.stopping():
                return done
            try:
                done[name] += job(ctx)
            except Exception as exc:  # e.g. the database is away: the other jobs still run
                ctx.failed(name, None, exc)
    return done
