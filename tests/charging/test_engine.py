"""The charging engine's batch life cycle, on SQLite and PostgreSQL: requests that wait
together are decided in one transaction; a request refused for its own reasons does not fail
the others; a batch that cannot commit is decided again one request at a time (none lost,
none answered twice); no request is answered before its batch has committed."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from commcredits.charging.engine import ChargingEngine
from commcredits.charging.requests import Kind, Request, Settings
from commcredits.charging.work import Batch
from commcredits.domain.errors import DomainError
from commcredits.services import settlement
from tests.api.voice import UK, UK_MOBILE, US, Voice, ledger_ok, make_voice


def _authorize(voice: Voice, call_id: str, **extra: Any) -> Request:
    body = {"call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out", "from": US,
            "to": UK_MOBILE, "upn": "payg@contoso.com", **extra}
    return Request(Kind.AUTHORIZE, body, auth=f"Bearer {voice.switch}")


def _end(voice: Voice, call_id: str, duration_s: int = 60) -> Request:
    return Request(Kind.END, {"call_id": call_id, "duration_s": duration_s},
                   auth=f"Bearer {voice.switch}")


def _engine(voice: Voice) -> ChargingEngine:
    return ChargingEngine(voice.api.rt.db, Settings())


def _held(engine: ChargingEngine) -> tuple[threading.Event, threading.Event]:
    """Make the engine's next batch wait (after it has read) until ``release`` is set;
    ``reading`` is set once it waits."""
    reading, release = threading.Event(), threading.Event()
    real = engine.db.batch

    class Holding:
        def __init__(self, store: Any) -> None:
            self.store = store

        def load(self, plan: Any) -> Any:
            loaded = self.store.load(plan)  # the wallets are locked now
            if not reading.is_set():
                reading.set()
                assert release.wait(30)
            return loaded

        def write(self, *args: Any, **kw: Any) -> None:
            self.store.write(*args, **kw)

    @contextmanager
    def batch() -> Any:
        with real() as (uow, store):
            yield uow, Holding(store)
    engine.db = type("Db", (), {"batch": staticmethod(batch), "uow": engine.db.uow})()
    return reading, release


def test_requests_that_wait_together_are_decided_in_one_batch(voice):
    engine = _engine(voice)
    sizes: list[int] = []
    engine.on_batch = lambda size, _s: sizes.append(size)
    reading, release = _held(engine)
    first = _authorize(voice, "b-0")
    threads = [threading.Thread(target=engine.ask, args=(first,))]
    threads[0].start()
    assert reading.wait(30)  # the first batch is under way: the next ones queue up
    later = [_authorize(voice, f"b-{i}") for i in range(1, 9)]
    for r in later:
        threads.append(threading.Thread(target=engine.ask, args=(r,)))
        threads[-1].start()
    for _ in range(200):  # every later request is queued behind the first batch
        if len(engine._queue) == len(later):
            break
        threading.Event().wait(0.01)
    assert len(engine._queue) == len(later)
    release.set()
    for t in threads:
        t.join(30)
    assert sizes == [1, 8]
    assert all(r.result["decision"] == "allowed" for r in [first, *later])
    ends = [_end(voice, f"b-{i}") for i in range(9)]
    engine.run(ends)
    assert {r.result["charge"] for r in ends} == {"0.15"}  # 0.05 fee + a minute at 0.10
    assert voice.credits()["balance"] == str(Decimal("50.00") - 9 * Decimal("0.15"))
    ledger_ok(voice.api)


def test_a_request_refused_for_its_own_reasons_does_not_fail_the_others(voice):
    engine = _engine(voice)
    good = [_authorize(voice, f"g-{i}") for i in range(3)]
    stranger = _authorize(voice, "g-x", tenant_id="tnt_nobody")
    nobody = _authorize(voice, "g-y", upn="nobody@contoso.com")
    bad_key = Request(Kind.AUTHORIZE, {**good[0].body, "call_id": "g-k"}, auth="Bearer nope")
    again = _authorize(voice, "g-0")  # the same call id twice in one batch: one decision
    engine.run([good[0], stranger, good[1], nobody, bad_key, good[2], again])
    assert engine.batches == 1
    assert [r.result["decision"] for r in good] == ["allowed"] * 3
    assert again.result == good[0].result
    assert isinstance(stranger.error, DomainError) and stranger.error.code == "not_found"
    assert nobody.result["decision"] == "blocked" and nobody.result["reason"] == "unknown_user"
    assert isinstance(bad_key.error, DomainError) and bad_key.error.code == "unauthorized"


def test_a_batch_that_cannot_commit_is_decided_again_one_request_at_a_time(voice, monkeypatch):
    engine = _engine(voice)
    real = Batch.commit
    failed: list[int] = []

    def commit(self: Batch) -> None:
        if not failed:
            failed.append(1)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))
        real(self)
    monkeypatch.setattr(Batch, "commit", commit)
    calls = [_authorize(voice, f"c-{i}") for i in range(5)]
    engine.run(calls)
    assert failed == [1] and engine.batches == 5  # the batch failed, then one by one
    assert all(r.result["decision"] == "allowed" for r in calls)
    ends = [_end(voice, f"c-{i}") for i in range(5)]
    engine.run(ends)
    with voice.api.rt.db.uow() as uow:
        stored = uow.conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one()
        settled = uow.conn.execute(sa.text(
            "SELECT count(*) FROM usage_records WHERE kind = 'call'")).scalar_one()
    assert stored == 5 and settled == 5  # each once
    assert voice.credits()["balance"] == str(Decimal("50.00") - 5 * Decimal("0.15"))
    ledger_ok(voice.api)


def test_no_request_is_answered_before_its_batch_commits(voice, monkeypatch):
    """When nothing can commit, no request is told it was allowed: each answers the
    database's error, and nothing of it is stored."""
    engine = _engine(voice)

    def commit(self: Batch) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("the database is away"))
    monkeypatch.setattr(Batch, "commit", commit)
    calls = [_authorize(voice, f"n-{i}") for i in range(4)]
    engine.run(calls)
    assert all(r.result is None and isinstance(r.error, sa.exc.OperationalError)
               for r in calls)
    with voice.api.rt.db.uow() as uow:
        assert uow.conn.execute(sa.text("SELECT count(*) FROM calls")).scalar_one() == 0
    assert voice.credits()["reserved"] == "0.00"


def test_a_request_that_fails_after_changing_something_spoils_only_itself(voice, monkeypatch):
    engine = _engine(voice)
    calls = [_authorize(voice, f"s-{i}") for i in range(3)]
    engine.run(calls)
    real = settlement._ended

    def ended(uow: Any, call: Any, *args: Any) -> Any:
        if call.call_id == "s-1":  # after the charge was taken in memory
            raise DomainError("broken", "this call cannot be settled")
        return real(uow, call, *args)
    monkeypatch.setattr(settlement, "_ended", ended)
    ends = [_end(voice, f"s-{i}") for i in range(3)]
    engine.run(ends)
    assert ends[0].result["charge"] == ends[2].result["charge"] == "0.15"
    assert isinstance(ends[1].error, DomainError) and ends[1].error.code == "broken"
    assert voice.credits()["balance"] == str(Decimal("50.00") - 2 * Decimal("0.15"))
    ledger_ok(voice.api)


def test_the_same_call_id_in_two_engines_is_decided_once(voice, second):
    """Two processes (two engines, two pools) get the same authorization at once: one
    decision is stored and both answer it."""
    engines = [_engine(voice), ChargingEngine(second.db, Settings())]
    requests = [_authorize(voice, "twin", to=UK) for _ in range(2)]
    start = threading.Barrier(2)

    def ask(engine: ChargingEngine, request: Request) -> None:
        start.wait()
        engine.run([request])
    threads = [threading.Thread(target=ask, args=pair) for pair in zip(engines, requests,
                                                                        strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert requests[0].error is None and requests[1].error is None
    assert requests[0].result == requests[1].result
    with voice.api.rt.db.uow() as uow:
        held = uow.conn.execute(sa.text("SELECT credit_reserved FROM calls")).scalars().all()
    assert len(held) == 1  # one call, one reservation
    assert Decimal(voice.credits()["reserved"]) == Decimal(held[0]).scaleb(-6)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_a_request_whose_wallet_another_batch_holds_waits_for_the_next_batch(voice, second):
    """Two engines (two workers): while one holds tenant A's wallet, the other decides what
    it has for tenant B at once and puts A's request off to its next batch, which waits for
    the wallet; nothing waits for a wallet it does not need."""
    other = make_voice(voice.api)  # tenant B
    other.fund("50.00")
    holder = ChargingEngine(second.db, Settings())
    reading, release = _held(holder)
    held = threading.Thread(target=holder.ask, args=(_authorize(voice, "h-0"),))
    held.start()
    assert reading.wait(30)  # the holder's batch has tenant A's wallet, and keeps it
    engine = _engine(voice)
    sizes: list[int] = []
    engine.on_batch = lambda size, _s: sizes.append(size)
    for_a, for_b = _authorize(voice, "h-1"), _authorize(other, "h-2")
    done_a, done_b = threading.Event(), threading.Event()
    with engine._cv:  # both queued before the engine looks: one batch
        engine.submit(for_a, done_a.set)
        engine.submit(for_b, done_b.set)
    assert done_b.wait(30)
    assert for_b.result["decision"] == "allowed"
    assert for_a.result is None and for_a.deferred == voice.tid  # still waiting
    release.set()
    assert done_a.wait(30)
    held.join(30)
    assert for_a.result["decision"] == "allowed"
    assert sum(sizes) == 2 and len(sizes) == 2  # B's batch, then A's
