"""Lot expiry in bounded chunks: forfeit what is left in lots past their 12-month expiry
(ledger kind ``expiry``, ``lot_expired``), and warn 30 days ahead (``lot_expiring``).

A tenant with 200,000 lots expiring at once used to be one transaction of minutes holding its
wallet, and the whole jobs run (and SIGTERM) waited behind it. Now each transaction takes
the next ``size`` open lots of one tenant in FIFO order (``ix_lots_open_fifo``) under that
one wallet's lock, writes their ledger transactions, notices and events in bulk, and
commits; a chunk slower than ``seconds`` halves the next; between chunks the job looks at
``stopping``. So:

* no transaction holds a wallet longer than about ``seconds``, and it holds one wallet
  only (nothing to take out of the charging engine's tenant order);
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


TURN_S = 0.02  # the pause between two chunks


@dataclass(frozen=True, slots=True)
class Chunks:
    """How big one transaction of a bulk job may get, and when to stop between them."""

    size: int = 500  # lots per transaction, at most (COMMCREDITS_JOBS_CHUNK)
    seconds: float = 0.5  # a slower transaction halves the next (COMMCREDITS_JOBS_CHUNK_S)
    stopping: Callable[[], bool] = lambda: False  # checked between chunks


def expire_tenant(db: Database, tid: str, chunks: Chunks) -> int:
    """Forfeit the remainders of ``tid``'s expired lots, chunk by chunk, until none is left
    or ``chunks.stopping()``. Returns the number of lots expired. A chunk that took longer
    than ``chunks.seconds`` halves the next one (a slow disk, a busy database), a quick one
    lets it grow back to ``chunks.size``."""
    expired, size = 0, chunks.size
    while not chunks.stopping():
        started = time.monotonic()
        done, more = _expire_chunk(db, tid, size)
        expired += done
        if not more:
            break
        took = time.monotonic() - started
        time.sleep(TURN_S)  # other writers' turn (SQLite has one writer at a time)
        if took > chunks.seconds:
            size = max(10, size // 2)
        elif took < chunks.seconds / 4:
            size = min(chunks.size, size * 2)
    return expired


def _expire_chunk(db: Database, tid: str, size: int) -> tuple[int, bool]:
    """One transaction: the next ``size`` expired lots forfeited, with their notices and
    events, written in bulk. Returns (lots expired, whether more may be due)."""
    with db.uow() as uow:
        tenant = get_tenant(uow, tid)
        wallet = uow.tenants.wallet(tid, lock=True)
        due = uow.credits.open_lots_due(tid, uow.now, size)
        draws = lotrules.due_for_expiry(due, uow.now)  # oldest first
        txns = [ledger_rules.spend(tid, [d], ledger_rules.TxnKind.EXPIRY, "forfeited",
                                   reference=f"lot {d.lot_id} expired") for d in draws]
        balance = wallet.balance
        ledger.post_many(uow, wallet, txns, due)
        notices, happened = [], []
        for draw in draws:  # what each lot's notice says: the balance just after it
            balance -= draw.amount
            forfeited, left = fmt(draw.amount, tenant.currency), fmt(balance, tenant.currency)
            notices.append(notes.lot_expired(tenant.name, draw.lot_id, forfeited,
                                             tenant.currency, left))
            happened.append((f"lot_expired:{draw.lot_id}", {
                "lot_id": draw.lot_id, "currency": tenant.currency, "forfeited": forfeited,
                "balance": left}))
        notify.queue_many(uow, tenant, notices)
        events.record_many(uow, tid, EventKind.LOT_EXPIRED, happened)
        more = len(due) == size
        if not more and wallet.reserved > 0:  # the tenant's last chunk
            cuts.cover_reservations(uow, wallet, uow.credits.spendable(tid, uow.now))
        uow.commit()
    return len(draws), more


def warn_tenant(db: Database, tid: str, chunks: Chunks) -> int:
    """Queue ``lot_expiring`` once per lot, 30 days before it expires, chunk by chunk."""
    warned = 0
    while not chunks.stopping():
        with db.uow() as uow:
            tenant = get_tenant(uow, tid)
            uow.tenants.wallet(tid, lock=True)  # one warner per tenant at a time
            due = uow.credits.lots_to_warn(tid, uow.now, uow.now + lotrules.EXPIRING_NOTICE,
                                           chunks.size)
            notify.queue_many(uow, tenant, [notes.lot_expiring(
                tenant.name, lot.id, fmt(lot.remaining, tenant.currency), tenant.currency,
                lot.expires_at.isoformat()) for lot in due])
            done = [lot.id for lot in due]
            uow.credits.mark_expiring_notified_many(done)
            uow.commit()
        warned += len(done)
        if len(done) < chunks.size:
            break
    return warned
