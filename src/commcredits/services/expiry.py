"""Lot expiry in bounded chunks: forfeit what is left in lots past their 12-month expiry
(ledger kind ``expiry``, ``lot_expired``), and warn 30 days ahead (``lot_expiring``).

A tenant with 200,000 lots expiring at once used to be one transaction of minutes holding its
wallet, and the whole jobs run (and SIGTERM) waited behind it. Now each transaction takes
the next ``chunk`` open lots of one tenant in FIFO order (``ix_lots_open_fifo``) under that
one wallet's lock, stops early once ``chunk_s`` has passed, and commits; between chunks the
job looks at ``stopping``. So:

* no transaction holds a wallet longer than about ``chunk_s`` (plus one lot's work), and it
  holds one wallet only (nothing to take out of the charging engine's tenant order);
* exactly right and resumable: a lot is forfeited once, by the ledger transaction that
  sets its remainder to zero, committed with it; a chunk that is interrupted (SIGTERM,
  ``kill -9``, a failure) is rolled back whole and done again by the next run, and a lot
  already forfeited is not selected again (its remainder is zero).
* forfeiture does not change what is spendable (an expired lot is not spendable from its
  expiry instant, forfeited or not), so reservations it leaves uncovered are cut once, in the
  tenant's last chunk, against the database's sum of the live lots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain import notifications as notes
from commcredits.domain.events import EventKind
from commcredits.domain.money import fmt
from commcredits.services import cuts, events, ledger, notify
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database


@dataclass(frozen=True, slots=True)
class Chunks:
    """How big one transaction of a bulk job may get, and when to stop between them."""

    size: int = 500  # lots per transaction (COMMCREDITS_JOBS_CHUNK)
    seconds: float = 0.5  # a chunk ends early after this long (COMMCREDITS_JOBS_CHUNK_S)
    stopping: Callable[[], bool] = lambda: False  # checked between chunks


def expire_tenant(db: Database, tid: str, chunks: Chunks) -> int:
    """Forfeit the remainders of ``tid``'s expired lots, chunk by chunk, until none is left
    or ``chunks.stopping()``. Returns the number of lots expired."""
    expired = 0
    while not chunks.stopping():
        done, more = _expire_chunk(db, tid, chunks)
        expired += done
        if not more:
            break
    return expired


def _expire_chunk(db: Database, tid: str, chunks: Chunks) -> tuple[int, bool]:
    """One transaction: (lots expired, whether more may be due)."""
    with db.uow() as uow:
        tenant = get_tenant(uow, tid)
        wallet = uow.tenants.wallet(tid, lock=True)
        due = uow.credits.open_lots_due(tid, uow.now, chunks.size)
        by_id = {lot.id: lot for lot in due}
        started, expired = time.monotonic(), 0
        for draw in lotrules.due_for_expiry(due, uow.now):  # oldest first
            lot = by_id[draw.lot_id]
            txn = ledger_rules.spend(tid, [draw], ledger_rules.TxnKind.EXPIRY, "forfeited",
                                     reference=f"lot {lot.id} expired")
            ledger.post(uow, wallet, txn, lots_now=(lot,))
            notify.queue(uow, tenant, notes.lot_expired(
                tenant.name, lot.id, fmt(draw.amount, tenant.currency), tenant.currency,
                fmt(wallet.balance, tenant.currency)))
            events.record(uow, tid, EventKind.LOT_EXPIRED, f"lot_expired:{lot.id}",
                          {"lot_id": lot.id, "currency": tenant.currency,
                           "forfeited": fmt(draw.amount, tenant.currency),
                           "balance": fmt(wallet.balance, tenant.currency)})
            expired += 1
            if time.monotonic() - started >= chunks.seconds:
                break
        more = expired == chunks.size or expired < len(due)
        if not more and wallet.reserved > 0:  # the tenant's last chunk
            cuts.cover_reservations(uow, wallet, uow.credits.spendable(tid, uow.now))
        uow.commit()
    return expired, more


def warn_tenant(db: Database, tid: str, chunks: Chunks) -> int:
    """Queue ``lot_expiring`` once per lot, 30 days before it expires, chunk by chunk."""
    warned = 0
    while not chunks.stopping():
        with db.uow() as uow:
            tenant = get_tenant(uow, tid)
            uow.tenants.wallet(tid, lock=True)  # one warner per tenant at a time
            due = uow.credits.lots_to_warn(tid, uow.now, uow.now + lotrules.EXPIRING_NOTICE,
                                           chunks.size)
            started, done = time.monotonic(), []
            for lot in due:
                notify.queue(uow, tenant, notes.lot_expiring(
                    tenant.name, lot.id, fmt(lot.remaining, tenant.currency), tenant.currency,
                    lot.expires_at.isoformat()))
                done.append(lot.id)
                if time.monotonic() - started >= chunks.seconds:
                    break
            uow.credits.mark_expiring_notified_many(done)
            uow.commit()
        warned += len(done)
        if len(done) < chunks.size and len(done) == len(due):
            break
    return warned
