"""``TenantRepo.wallet_and_lots``: the wallet lock and the lots in one round trip, and the
lots read *after* the lock is held. A transaction that waited for the lock must see the
lots as the holder committed them: one joined ``SELECT ... FOR UPDATE`` returns them as they
were before the wait (a lost update; migration 0012 says why)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.api.voice import make_voice


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no row lock
def test_the_lots_are_read_after_the_lock_so_a_waiter_sees_the_holders_update(api):
    voice = make_voice(api)
    voice.fund("10.00")
    db = api.rt.db
    seen: list[Decimal] = []
    pid: list[int] = []
    opened = threading.Event()

    def waiter() -> None:
        with db.uow() as uow:
            pid.append(int(uow.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
            opened.set()
            _, lots = uow.tenants.wallet_and_lots(voice.tid)  # blocks on the holder's lock
            seen.append(lots[0].remaining)

    with db.uow() as holder:
        _, lots = holder.tenants.wallet_and_lots(voice.tid)
        assert [lot.remaining for lot in lots] == [Decimal("10.00")]
        second = threading.Thread(target=waiter)
        second.start()
        assert opened.wait(10)
        _until_blocked(db, pid[0])  # the waiter's read is queued behind the lock, not after
        assert not seen
        holder.credits.set_remaining(lots[0].id, Decimal("7.50"))
        holder.commit()
    second.join(30)
    assert seen == [Decimal("7.50")]  # not 10.00: the holder's committed update


def _until_blocked(db, pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with db.engine.connect() as conn:
        while not conn.execute(sa.text("SELECT cardinality(pg_blocking_pids(:p)) > 0"),
                               {"p": pid}).scalar_one():
            conn.rollback()  # a fresh snapshot of the lock table each time
            assert time.monotonic() < deadline, "the waiter never waited for the lock"
            time.sleep(0.02)


def test_a_tenant_without_lots_still_has_its_wallet(api):
    tid = api.tenant("US")
    with api.rt.db.uow() as uow:
        wallet, lots = uow.tenants.wallet_and_lots(tid)
    assert wallet.tenant_id == tid and wallet.balance == 0 and lots == []
