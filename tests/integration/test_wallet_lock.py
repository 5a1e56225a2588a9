"""``TenantRepo.wallet_and_lots``: the wallet lock and the lots in one round trip, and the
lots read *after* the lock is held. A transaction that waited for the lock must see the
lots as the holder committed them: one joined ``SELECT ... FOR UPDATE`` returns them as they
were before the wait (a lost update; migration 0012 says why). Both backends."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from tests.api.voice import make_voice


def test_the_lots_are_read_after_the_lock_so_a_waiter_sees_the_holders_update(api):
    voice = make_voice(api)
    voice.fund("10.00")
    db = api.rt.db
    seen: list[Decimal] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        with db.uow() as uow:  # blocks on the holder's lock (SQLite: on its BEGIN IMMEDIATE)
            _, lots = uow.tenants.wallet_and_lots(voice.tid)
            seen.append(lots[0].remaining)

    with db.uow() as holder:
        _, lots = holder.tenants.wallet_and_lots(voice.tid)
        assert [lot.remaining for lot in lots] == [Decimal("10.00")]
        second = threading.Thread(target=waiter)
        second.start()
        waiting.wait(5)
        time.sleep(0.5)  # the waiter's read is now queued behind the lock
        assert not seen
        holder.credits.set_remaining(lots[0].id, Decimal("7.50"))
        holder.commit()
    second.join(30)
    assert seen == [Decimal("7.50")]  # not 10.00: the holder's committed update


def test_a_tenant_without_lots_still_has_its_wallet(api):
    tid = api.tenant("US")
    with api.rt.db.uow() as uow:
        wallet, lots = uow.tenants.wallet_and_lots(tid)
    assert wallet.tenant_id == tid and wallet.balance == 0 and lots == []
