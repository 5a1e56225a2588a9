"""A database connection killed under a request (issue 8, item 2): the answer is a JSON 503
with Retry-After, and a retry with the same Idempotency-Key has its effect exactly once.

On PostgreSQL the request's own backend is really terminated (``pg_terminate_backend``); on
SQLite, which has no server to lose, the driver error is raised in its place."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.payments import RecordingGateway, read_statement
from commcredits.services import credits, payments


def _kill(uow) -> None:
    """Kill the unit of work's connection. On PostgreSQL the backend really goes (this
    statement or the request's next one fails by itself); SQLite gets the driver error."""
    if uow.postgres:
        uow.conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return
    raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection lost"))


def test_a_killed_connection_answers_503_and_the_next_request_works(api, monkeypatch):
    tid = api.tenant()
    real = credits.credits_view

    def view(uow, tenant_id):
        _kill(uow)
        return real(uow, tenant_id)
    monkeypatch.setattr(credits, "credits_view", view)
    r = api.get(f"/v1/tenants/{tid}/credits")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable" and int(r.headers["Retry-After"]) > 0
    monkeypatch.setattr(credits, "credits_view", real)
    assert api.get(f"/v1/tenants/{tid}/credits").status_code == 200  # the pool recovered


def test_an_order_whose_connection_dies_is_paid_once_on_retry(api, monkeypatch, tmp_path):
    gateway = RecordingGateway(str(tmp_path / "statement.jsonl"))
    api.rt.gateway = gateway
    tid = api.tenant()
    pm = api.card(tid)
    real = credits.fund
    killed = []

    def fund(uow, *args, **kw):
        if not killed:
            killed.append(1)
            _kill(uow)  # the settling transaction loses its connection
        return real(uow, *args, **kw)
    monkeypatch.setattr(credits, "fund", fund)
    headers = {"Authorization": f"Bearer {api.operator}", "Idempotency-Key": "o-1"}
    body = {"amount": "75.00", "payment_method_id": pm}
    url = f"/v1/tenants/{tid}/credits/orders"
    first = api.client.post(url, json=body, headers=headers)
    assert first.status_code == 503, first.text
    assert api.credits(tid)["balance"] == "0.00"  # nothing half-written
    again = api.client.post(url, json=body, headers=headers)
    assert again.status_code == 201, again.text
    replay = api.client.post(url, json=body, headers=headers)
    assert replay.json() == again.json()
    assert api.credits(tid)["balance"] == "75.00"
    assert len(read_statement(gateway.path)) == 1  # the card was charged once
    with api.rt.db.uow() as uow:
        assert [a.status for a in uow.payments.all()] == ["succeeded"]
    assert payments.reconcile(api.rt.db, gateway) == []


def test_a_call_whose_batch_loses_its_connection_answers_503_and_the_next_works(api,
                                                                               monkeypatch):
    """The charging engine's connection dies under a batch: the switch is told 503 (it will
    retransmit), nothing of the call is stored, and the next call is decided as usual."""
    from commcredits.services import charging
    from tests.api.voice import UK, make_voice
    voice = make_voice(api)
    voice.fund("10.00")
    real = charging.authorize_call

    def authorize_call(uow, *args, **kw):
        _kill(uow)
        return real(uow, *args, **kw)
    monkeypatch.setattr(charging, "authorize_call", authorize_call)
    body = {"call_id": "dies", "tenant_id": voice.tid, "call_type": "user_out",
            "from": "+14255550100", "to": UK, "upn": "payg@contoso.com"}
    r = api.post("/v1/calls", body, key=voice.switch)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable" and int(r.headers["Retry-After"]) > 0
    monkeypatch.setattr(charging, "authorize_call", real)
    assert voice.credits()["reserved"] == "0.00"  # nothing half-written
    again = api.post("/v1/calls", body, key=voice.switch, expect=200).json()
    assert again["decision"] == "allowed"  # the retransmission is decided, once
    assert voice.call("next", UK)["decision"] == "allowed"
