"""One big tenant's lots expire while another tenant's authorization lapses (issue 19, §1).

Used by ``tests/jobs`` (20,000 lots) and as a measurement::

    python -m tests.jobs.scenario --lots 200000 [--pg]

which prints how long the expiry took, its longest transaction, how late the lapse was
released and whether ``ledger verify`` is clean.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from commcredits.adapters.db import bulk
from commcredits.adapters.db.schema import ledger_postings, ledger_transactions, lots
from commcredits.adapters.db.uow import Database
from commcredits.domain import ledger as ledger_rules
from commcredits.domain.lots import expiry_for
from commcredits.services import expiry
from commcredits.services.ids import new_id
from commcredits.services.ledger import verify


def seed_lots(db: Database, tid: str, n: int, *,
              age: relativedelta = relativedelta(months=13),
              amount: Decimal = Decimal("1.25")) -> None:
    """``n`` funded lots of ``tid`` bought ``age`` before the clock's now (by default past
    their expiry), a millisecond apart, with their ledger transactions, written in bulk
    (``ledger verify`` stays clean)."""
    with db.uow() as uow:
        wallet = uow.tenants.wallet(tid, lock=True)
        start = uow.now - age
        lot_rows, txn_rows, legs = [], [], []
        balance = wallet.balance
        for i in range(n):
            lot_id, txn_id = new_id("lot"), new_id("txn")
            bought = start + timedelta(milliseconds=i)
            lot_rows.append({"id": lot_id, "tenant_id": tid, "seq": wallet.lot_seq + 1 + i,
                             "amount": amount, "remaining": amount, "purchased_at": bought,
                             "expires_at": expiry_for(bought), "source": "order",
                             "order_id": None, "expiring_notified": False})
            txn = ledger_rules.funding(tid, lot_id, amount, ledger_rules.TxnKind.ORDER,
                                       reference="seeded")
            balance += amount
            txn_rows.append({"id": txn_id, "tenant_id": tid, "seq": wallet.txn_seq + 1 + i,
                             "kind": txn.kind.value, "at": bought, "amount": amount,
                             "balance_after": balance, "lot_id": lot_id,
                             "reference": "seeded"})
            legs += [{"transaction_id": txn_id, "tenant_id": tid, "debit_account": p.debit,
                      "credit_account": p.credit, "amount": p.amount} for p in txn.postings]
        bulk.insert(uow.conn, lots, lot_rows)
        bulk.insert(uow.conn, ledger_transactions, txn_rows)
        bulk.insert(uow.conn, ledger_postings, legs)
        wallet.balance, wallet.lot_seq, wallet.txn_seq = (
            balance, wallet.lot_seq + n, wallet.txn_seq + n)
        uow.tenants.save_wallet(wallet)
        # as an import does: the planner's statistics (until autovacuum runs, a plan made
        # for empty tables makes ``ledger verify`` join every transaction to every other)
        bulk.analyze(uow.conn, (lots, ledger_transactions, ledger_postings))
        uow.commit()


def expiries(db: Database, tid: str) -> tuple[int, int]:
    """(expiry transactions of ``tid``, distinct lots they name)."""
    t = ledger_transactions
    with db.uow(readonly=True) as uow:
        row = uow.conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(t.c.lot_id)))
            .where(t.c.tenant_id == tid, t.c.kind == "expiry")).one()
    return int(row[0]), int(row[1])


def open_lots(db: Database, tid: str) -> int:
    with db.uow(readonly=True) as uow:
        return int(uow.conn.execute(sa.select(sa.func.count()).select_from(lots).where(
            lots.c.tenant_id == tid, lots.c.remaining > 0)).scalar() or 0)


def ledger_problems(db: Database) -> list[Any]:
    with db.uow(readonly=True) as uow:
        return verify(uow)[1]


@dataclass
class ChunkTimes:
    """The duration of every expiry transaction (a wrapper around ``_expire_chunk``)."""

    seconds: list[float] = field(default_factory=list)

    @contextlib.contextmanager
    def watching(self) -> Iterator[ChunkTimes]:
        real = expiry._expire_chunk

        def timed(*args: Any, **kw: Any) -> Any:
            started = time.monotonic()
            try:
                return real(*args, **kw)
            finally:
                self.seconds.append(time.monotonic() - started)
        expiry._expire_chunk = timed  # type: ignore[assignment]
        try:
            yield self
        finally:
            expiry._expire_chunk = real  # type: ignore[assignment]


@dataclass
class Outcome:
    lots: int
    lapse_after_s: float  # from the TTL's end (during the expiry) until the lapse was released
    expired_when_lapsed: int  # lots of the big tenant expired by then
    expiry_s: float  # from the jobs' start until the last lot was expired
    longest_chunk_s: float
    chunks: int
    expiries: tuple[int, int]
    problems: list[Any]


def run(api: Any, n: int, interval_s: float = 1.0, timeout_s: float = 3600) -> Outcome:
    """The scenario on ``api`` (the tests' ``Api``): a voice tenant's call authorized and
    never answered, a big tenant with ``n`` expired lots; ``serve``'s job runner starts, and
    once the expiry is under way the (manual) clock moves past the authorization's TTL."""
    from commcredits.entrypoints.worker import JobThread
    from tests.api.voice import UK, make_voice
    voice = make_voice(api)
    voice.fund("10.00")
    big = api.tenant("US")
    seed_lots(api.rt.db, big, n)
    voice.call("lapses-on-time", UK)
    runner = JobThread(api.rt, interval_s)
    with ChunkTimes().watching() as times:
        started = time.monotonic()
        runner.start()
        due_at = lapse_at = expired_then = None
        try:
            while time.monotonic() - started < timeout_s:
                if due_at is None and expiries(api.rt.db, big)[0] > 0:
                    # the expiry is under way: now the authorization's TTL runs out
                    with api.rt.db.uow() as uow:
                        api.rt.db.clock.set(uow.conn, uow.now + timedelta(
                            seconds=api.rt.settings.auth_ttl_s + 1))
                        uow.commit()
                    due_at = time.monotonic()
                if due_at is not None and lapse_at is None and _lapsed(api.rt.db,
                                                                        "lapses-on-time"):
                    lapse_at, expired_then = time.monotonic(), expiries(api.rt.db, big)[0]
                if lapse_at is not None and open_lots(api.rt.db, big) == 0:
                    break
                time.sleep(0.05)
            done_at = time.monotonic()
        finally:
            runner.stop()
    assert lapse_at is not None and expired_then is not None, "the lapse was never released"
    assert due_at is not None
    return Outcome(n, lapse_at - due_at, expired_then, done_at - started,
                   max(times.seconds, default=0.0), len(times.seconds),
                   expiries(api.rt.db, big), ledger_problems(api.rt.db))


def _lapsed(db: Database, call_id: str) -> bool:
    with db.uow(readonly=True) as uow:
        call = uow.charging.call(call_id)
    return call is not None and call.status != "active"


def main() -> None:
    from bench.common import Databases, runtime
    from fastapi.testclient import TestClient

    from commcredits.entrypoints.api.app import create_app
    from tests.conftest import Api
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lots", type=int, default=200_000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (else SQLite)")
    parser.add_argument("--interval", type=float, default=1.0, help="jobs interval, s")
    args = parser.parse_args()
    dbs = Databases()
    try:
        with dbs.url("postgresql" if args.pg else "sqlite") as url, runtime(url) as rt, \
                TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
            began = datetime.now()
            out = run(Api(client, rt), args.lots, args.interval)
            print(f"backend={'postgresql' if args.pg else 'sqlite'} lots={out.lots} "
                  f"interval={args.interval}s started={began:%H:%M:%S}")
            print(f"lapse released {out.lapse_after_s:.2f} s after its TTL ran out "
                  f"(big tenant: {out.expired_when_lapsed} lots expired by then)")
            print(f"expiry of all lots: {out.expiry_s:.1f} s in {out.chunks} transactions, "
                  f"longest {out.longest_chunk_s:.3f} s")
            print(f"expiry transactions {out.expiries[0]}, distinct lots {out.expiries[1]}; "
                  f"ledger verify: {'clean' if not out.problems else out.problems[:5]}")
    finally:
        dbs.close()


if __name__ == "__main__":
    main()
