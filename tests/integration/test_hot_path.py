"""The fast call path (issue 7) gives up nothing: what an authorization reads in one
statement is read fresh every time, so a change made through one server process is seen by
the very next authorization in another (each with its own rate-deck cache); the lean route
answers exactly like the FastAPI route; a pooled connection that died while idle is
replaced before use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from commcredits.adapters.db import engine as engine_module
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.services import charging
from tests.api.voice import DECK, UK, ledger_ok, make_voice
from tests.conftest import _pg_url


@pytest.fixture
def other(api: Any) -> Iterator[Database]:
    """A second server process's view of the same database: its own engine and deck cache."""
    db = Database(make_engine(api.rt.settings.db), api.rt.db.clock)
    yield db
    db.engine.dispose()


def _authorize(db: Database, voice: Any, call_id: str, upn: str = "payg@contoso.com"
               ) -> dict[str, Any]:
    with db.uow() as uow:
        out = charging.authorize_call(uow, 300, {
            "call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out",
            "from": "+14255550100", "to": UK, "upn": upn})
        uow.commit()
    return out


def test_a_removed_license_is_seen_by_the_next_authorization_in_another_worker(api, other):
    voice = make_voice(api)
    voice.fund("50.00")
    assert _authorize(other, voice, "lic-1")["decision"] == "allowed"
    api.delete(f"/v1/tenants/{voice.tid}/users/payg@contoso.com/licenses/MCOPSTNPP",
               expect=200)
    second = _authorize(other, voice, "lic-2")
    assert second["decision"] == "blocked", second


def test_a_blocked_destination_is_seen_by_the_next_authorization_in_another_worker(api, other):
    voice = make_voice(api)
    voice.fund("50.00")
    assert _authorize(other, voice, "blk-1")["decision"] == "allowed"
    api.patch(f"/v1/tenants/{voice.tid}", {"blocked_prefixes": ["+44"]}, expect=200)
    second = _authorize(other, voice, "blk-2")
    assert (second["decision"], second["reason"]) == ("blocked", "destination_blocked")


def test_an_exhausted_balance_is_seen_by_the_next_authorization_in_another_worker(api, other):
    voice = make_voice(api)
    voice.fund("0.10")  # five minutes to London at 0.02
    first = _authorize(other, voice, "bal-1")
    assert first["decision"] == "allowed" and first["max_duration_s"] == 300
    voice.end("bal-1", 300)  # through the API: the other process spends it all
    assert voice.credits()["balance"] == "0.00"
    second = _authorize(other, voice, "bal-2")
    assert (second["decision"], second["reason"]) == ("blocked", "insufficient_credits")
    ledger_ok(api)


def test_a_new_rate_deck_is_priced_by_the_next_authorization_in_another_worker(api, other):
    voice = make_voice(api)
    voice.fund("1.00")
    assert _authorize(other, voice, "deck-1")["max_duration_s"] == 300  # cache warm
    dearer = DECK.replace("44,United Kingdom,any,0.0200", "44,United Kingdom,any,0.5000")
    r = api.client.put("/v1/rate-decks/USD", content=dearer.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    # 1.00 less the 0.10 the first call holds buys one whole minute at 0.50
    assert _authorize(other, voice, "deck-2")["max_duration_s"] == 60


def test_the_lean_route_answers_like_the_full_application(api):
    voice = make_voice(api)
    voice.fund("5.00")
    first = voice.call("lean-1", UK)
    assert first["decision"] == "allowed" and first["tenant_id"] == voice.tid
    assert voice.call("lean-1", UK) == first  # a retransmission: the stored decision
    # errors still come from the full application, with their usual shape
    bad = api.post("/v1/calls", {"call_id": "lean-2", "tenant_id": voice.tid,
                                 "call_type": "nonsense", "to": UK}, key=voice.switch)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    nokey = api.client.post("/v1/calls", json={"call_id": "lean-3"})
    assert nokey.status_code == 401 and nokey.json()["error"]["code"] == "unauthorized"
    gone = api.post("/v1/calls/nope/end", {"duration_s": 5}, key=voice.switch)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    by_path = voice.end("lean-1", 61)
    by_body = api.post("/v1/calls/end", {"call_id": "lean-1", "duration_s": 61},
                       key=voice.switch, expect=200).json()
    assert by_body == by_path and by_path["charge"] == "0.04"
    metrics = api.client.get("/metrics").text
    assert 'route="/v1/calls",status="200"' in metrics
    ledger_ok(api)


def test_a_pooled_connection_killed_while_idle_is_replaced(pg_schema, monkeypatch):
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)
    engine = make_engine(_pg_url(pg_schema), pool_size=1)
    admin = sa.create_engine(_pg_url(pg_schema))
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.begin() as conn:  # the server drops it while it waits in the pool
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_a_pinged_connection_is_idle_again_for_an_autocommit_read(pg_schema, monkeypatch):
    """The idle ping opens a transaction on the connection: left open, the one-statement
    read of the API key (autocommit) could not switch the connection and answered 500."""
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)
    db = Database(make_engine(_pg_url(pg_schema), pool_size=1))
    try:
        with db.uow(readonly=True) as uow:  # checked in: the next checkout pings it
            uow.conn.exec_driver_sql("SELECT 1")
        with db.uow(single=True) as uow:
            assert uow.conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        db.engine.dispose()
