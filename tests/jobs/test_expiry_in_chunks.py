"""Issue 19, §1: jobs that stay small and take turns.

One tenant's 20,000 expired lots are forfeited exactly (one expiry transaction per lot,
FIFO, ``ledger verify`` clean) in transactions of about half a second, while another
tenant's lapsing authorization is released on time by the urgent loop; SIGTERM of ``serve``
in the middle stops it within 10 s and the next run finishes the work, never twice.
(``python -m tests.jobs.scenario --lots 200000`` is the same scenario at full size.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from commcredits.adapters.db.schema import ledger_transactions, notifications
from commcredits.services import expiry, jobs, notify
from tests.jobs import scenario

LOTS = 20_000


def _notices(api, tid: str, kind: str) -> int:
    with api.rt.db.uow(readonly=True) as uow:
        return int(uow.conn.execute(sa.select(sa.func.count()).select_from(notifications)
                                    .where(notifications.c.tenant_id == tid,
                                           notifications.c.kind == kind)).scalar() or 0)


def _fifo(api, tid: str) -> bool:
    """The expiry transactions forfeit the lots in FIFO order (purchase, then sequence)."""
    t = ledger_transactions
    with api.rt.db.uow(readonly=True) as uow:
        forfeited = list(uow.conn.scalars(sa.select(t.c.lot_id).where(
            t.c.tenant_id == tid, t.c.kind == "expiry").order_by(t.c.seq)))
        bought = [lot.id for lot in uow.credits.lots(tid)]  # FIFO order
    return forfeited == bought


def test_many_lots_expire_exactly_while_another_tenants_lapse_is_on_time(api):
    interval = 1.0
    out = scenario.run(api, LOTS, interval_s=interval, timeout_s=120)
    assert out.expiries == (LOTS, LOTS)  # each lot forfeited once
    assert out.problems == []  # ledger verify
    # released within one jobs interval of its TTL (plus the time to notice), while the
    # other tenant's expiry was still under way
    assert out.lapse_after_s <= interval + 1.0, out
    assert out.expired_when_lapsed < LOTS, out
    # bounded transactions: at most a chunk (500 lots) each; how long one takes on this
    # machine is a measurement (python -m tests.jobs.scenario, docs/production.md), not a test
    assert out.chunks >= LOTS // 500, out


def test_expiry_is_fifo_and_sends_a_notice_per_lot(api):
    tid = api.tenant("US")
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["billing@contoso.com"]})
    scenario.seed_lots(api.rt.db, tid, 1_234)
    ctx = api.rt.jobs()
    ctx.chunk = 100
    assert jobs.run(ctx, "expire")["expire"] == 1_234
    assert _fifo(api, tid)
    assert _notices(api, tid, "lot_expired") == 1_234
    assert api.credits(tid)["balance"] == "0.00"
    assert jobs.run(ctx, "expire")["expire"] == 0  # nothing twice
    assert scenario.expiries(api.rt.db, tid) == (1_234, 1_234)
    assert scenario.ledger_problems(api.rt.db) == []


def _stop_after(chunks: int) -> Callable[[], bool]:
    seen = {"n": 0}
    real = expiry._expire_chunk

    def counting(*args, **kw):
        seen["n"] += 1
        return real(*args, **kw)
    expiry._expire_chunk = counting  # restored by the caller's monkeypatch
    return lambda: seen["n"] >= chunks


def test_a_stopped_run_leaves_whole_chunks_and_the_next_run_finishes(api, monkeypatch):
    tid = api.tenant("US")
    scenario.seed_lots(api.rt.db, tid, 1_000)
    monkeypatch.setattr(expiry, "_expire_chunk", expiry._expire_chunk)
    ctx = api.rt.jobs(stopping=_stop_after(2))
    ctx.chunk = 300
    assert jobs.run(ctx, "expire")["expire"] == 600  # two chunks, committed, then it stops
    assert scenario.expiries(api.rt.db, tid) == (600, 600)
    assert scenario.ledger_problems(api.rt.db) == []
    assert jobs.run(api.rt.jobs(), "expire")["expire"] == 400
    assert scenario.expiries(api.rt.db, tid) == (1_000, 1_000) and _fifo(api, tid)
    assert scenario.ledger_problems(api.rt.db) == []


def test_a_chunk_that_fails_is_rolled_back_whole_and_done_once_later(api, monkeypatch):
    tid = api.tenant("US")
    scenario.seed_lots(api.rt.db, tid, 700)
    real, calls = notify.queue_many, {"n": 0}

    def failing_second(uow, tenant, notices):
        calls["n"] += bool(notices)
        if calls["n"] == 2:
            raise RuntimeError("the database went away")
        return real(uow, tenant, notices)
    monkeypatch.setattr(notify, "queue_many", failing_second)
    failures = []
    ctx = api.rt.jobs()
    ctx.chunk, ctx.failed = 300, lambda job, row, exc: failures.append((job, row))
    assert jobs.run(ctx, "expire")["expire"] == 0  # the tenant failed (after one chunk)
    assert failures == [("expire", tid)]
    assert scenario.expiries(api.rt.db, tid) == (300, 300)  # the first chunk only
    monkeypatch.setattr(notify, "queue_many", real)
    assert jobs.run(ctx, "expire")["expire"] == 400
    assert scenario.expiries(api.rt.db, tid) == (700, 700)
    assert scenario.ledger_problems(api.rt.db) == []


def test_warnings_go_in_chunks_once_per_lot(api):
    tid = api.tenant("US")
    # expiring in 20 days: within the 30-day notice
    scenario.seed_lots(api.rt.db, tid, 1_100, age=relativedelta(months=12, days=-20))
    ctx = api.rt.jobs()
    ctx.chunk = 500
    assert jobs.warn_expiring(ctx) == 1_100
    assert jobs.warn_expiring(ctx) == 0
    assert _notices(api, tid, "lot_expiring") == 1_100
    assert api.credits(tid)["balance"] == "1375.00"  # nothing forfeited


def test_sigterm_in_the_middle_stops_serve_within_10_s_and_the_next_run_finishes(
        api, db_url, tmp_path):
    tid = api.tenant("US")
    scenario.seed_lots(api.rt.db, tid, LOTS)
    port = 18201 if db_url.startswith("sqlite") else 18202
    log = tmp_path / "serve.log"
    env = {**os.environ, "COMMCREDITS_DB": db_url, "COMMCREDITS_MANUAL_CLOCK": "1",
           "COMMCREDITS_SECRET_KEY": "a-long-random-test-secret-0123456789",
           "COMMCREDITS_JOBS_INTERVAL_S": "1", "COMMCREDITS_SMTP_URL": ""}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "commcredits.entrypoints.cli", "serve",
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while scenario.expiries(api.rt.db, tid)[0] == 0:  # the expiry is under way
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        stopped_in = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert stopped_in < 10, (stopped_in, log.read_text())
    done, _ = scenario.expiries(api.rt.db, tid)
    print(f"serve stopped {stopped_in:.2f} s after SIGTERM, {done} of {LOTS} lots expired")
    assert 0 < done < LOTS, done  # stopped in the middle, whole chunks committed
    assert scenario.ledger_problems(api.rt.db) == []
    assert jobs.run(api.rt.jobs(), "expire")["expire"] == LOTS - done  # the rest, once
    assert scenario.expiries(api.rt.db, tid) == (LOTS, LOTS)
    assert scenario.ledger_problems(api.rt.db) == []


def test_the_money_releasing_jobs_have_the_urgent_loop_and_every_job_a_loop():
    assert set(jobs.URGENT) == {"calls", "cuts"} and not set(jobs.URGENT) & set(jobs.BULK)
    assert set(jobs.URGENT) | set(jobs.BULK) == set(jobs.JOBS) == set(jobs.ORDER)


def test_posting_many_writes_what_posting_one_by_one_writes(api):
    """``ledger.post_many`` (the expiry chunks) against ``ledger.post`` (everything else)."""
    from decimal import Decimal

    from commcredits.domain import ledger as rules
    from commcredits.domain.lots import Draw
    from commcredits.services import ledger

    def forfeit_all(tid: str, many: bool) -> list[tuple[object, ...]]:
        with api.rt.db.uow() as uow:
            wallet = uow.tenants.wallet(tid, lock=True)
            lots = uow.credits.lots(tid)
            txns = [rules.spend(tid, [Draw(lot.id, lot.remaining - Decimal("0.25") * k)],
                                rules.TxnKind.EXPIRY, "forfeited", reference=f"r{k}")
                    for k, lot in enumerate(lots)]
            if many:
                ledger.post_many(uow, wallet, txns, lots)
            else:
                for txn in txns:
                    ledger.post(uow, wallet, txn)
            uow.commit()
            return [(t.seq, t.kind, t.amount, t.balance_after, t.reference)
                    for t in uow.credits.ledger(tid)] + [
                (lot.seq, lot.remaining) for lot in uow.credits.lots(tid)] + [
                (wallet.balance, wallet.txn_seq)]
    one, many = api.tenant("US"), api.tenant("US")
    for tid in (one, many):
        scenario.seed_lots(api.rt.db, tid, 4)
    assert forfeit_all(one, many=False) == forfeit_all(many, many=True)
    assert scenario.ledger_problems(api.rt.db) == []
