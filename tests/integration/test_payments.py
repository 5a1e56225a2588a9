"""Payments as a state machine (issue 8, item 3): recorded before the gateway is called, the
gateway called outside any transaction or lock, and nothing lost when a step is cut short."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from commcredits.adapters.payments import RecordingGateway, read_statement
from commcredits.services import payments
from commcredits.services.ledger import verify


@pytest.fixture
def recording(api, tmp_path):
    gateway = RecordingGateway(str(tmp_path / "statement.jsonl"))
    api.rt.gateway = gateway
    return gateway


def _attempts(api):
    with api.rt.db.uow() as uow:
        return uow.payments.all()


def _card_lots(api) -> dict[str, Decimal]:
    """gateway idempotency key → amount of every lot a card paid for."""
    with api.rt.db.uow() as uow:
        rows = uow.conn.execute(sa.text(
            "SELECT p.id, o.amount FROM payment_attempts p JOIN orders o ON o.id = p.order_id "
            "JOIN payment_methods m ON m.id = p.payment_method_id WHERE m.type = 'card'")).all()
    return {r[0]: Decimal(r[1]) / 10**6 for r in rows}


def _order(api, tid, amount, pm, **kw):
    return api.post(f"/v1/tenants/{tid}/credits/orders",
                    {"amount": amount, "payment_method_id": pm}, **kw)


def _statement(gateway) -> dict[str, Decimal]:
    return {c["key"]: Decimal(c["amount"]) for c in read_statement(gateway.path)}


def test_an_order_is_recorded_before_the_card_is_charged(api, recording):
    tid = api.tenant()
    pm = api.card(tid)
    seen = []
    real = recording.charge

    def charge(card, amount, currency, *, idempotency_key, **kw):
        seen.append([(a.id, a.status) for a in _attempts(api)])
        return real(card, amount, currency, idempotency_key=idempotency_key, **kw)
    recording.charge = charge
    order = api.order(tid, "75.00", pm)
    assert order.status_code == 201, order.text
    (attempt,) = _attempts(api)
    assert seen == [[(attempt.id, "pending")]]  # durable before any money moved
    assert attempt.status == "succeeded" and attempt.order_id == order.json()["id"]
    assert _statement(recording) == {attempt.id: Decimal("75.00")}  # the attempt id is the key


def test_the_gateway_is_called_with_no_lock_held(api, recording):
    """While the card is being charged, the tenant's wallet can be locked by someone else
    (a call authorization): the order holds no transaction open."""
    tid = api.tenant()
    pm = api.card(tid)
    real = recording.charge
    locked = []

    def charge(*args, **kw):
        with api.rt.db.uow() as uow:
            if uow.postgres:
                uow.conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            else:
                uow.conn.exec_driver_sql("PRAGMA busy_timeout = 2000")
            uow.tenants.wallet(tid, lock=True)
            locked.append(True)
            uow.commit()
        return real(*args, **kw)
    recording.charge = charge
    api.order(tid, "60.00", pm, expect=None)
    assert locked == [True]
    assert api.credits(tid)["balance"] == "60.00"


def test_a_crash_after_the_charge_is_reconciled(api, recording, monkeypatch):
    """The process dies between the gateway's answer and the lot (simulated: settle raises).
    Without an Idempotency-Key the client has no way to resume; reconcile funds it."""
    tid = api.tenant()
    pm = api.card(tid)
    real_settle = payments.settle

    def crash(*args, **kw):
        raise RuntimeError("killed")
    monkeypatch.setattr(payments, "settle", crash)
    r = api.order(tid, "80.00", pm)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    monkeypatch.setattr(payments, "settle", real_settle)
    assert api.credits(tid)["balance"] == "0.00"
    assert len(_statement(recording)) == 1  # money taken, no lot yet
    # a fresh attempt is left alone (it may still be in flight) ...
    assert payments.reconcile(api.rt.db, recording) == []
    # ... an old one is settled: the gateway answers with the charge it already made
    done = payments.reconcile(api.rt.db, recording, older_than=timedelta(0))
    assert [d.outcome for d in done] == ["funded"]
    assert api.credits(tid)["balance"] == "80.00"
    assert _statement(recording) == _card_lots(api)  # one charge, one lot
    assert payments.reconcile(api.rt.db, recording, older_than=timedelta(0)) == []
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def test_a_retry_with_the_key_resumes_the_interrupted_payment(api, recording, monkeypatch):
    tid = api.tenant()
    pm = api.card(tid)
    real_settle = payments.settle
    monkeypatch.setattr(payments, "settle", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("killed")))
    headers = {"Idempotency-Key": "order-1"}
    assert _order(api, tid, "90.00", pm, headers=headers).status_code == 500
    monkeypatch.setattr(payments, "settle", real_settle)
    again = _order(api, tid, "90.00", pm, headers=headers)
    assert again.status_code == 201, again.text
    replay = _order(api, tid, "90.00", pm, headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == again.json()
    assert api.credits(tid)["balance"] == "90.00"
    assert _statement(recording) == _card_lots(api)
    # the key belongs to the tenant: another of its keys replays it, with another body refused
    other = api.new_key("billing_admin", tid)
    assert _order(api, tid, "90.00", pm, headers=headers, key=other).json() == again.json()
    assert _order(api, tid, "91.00", pm, headers=headers).status_code == 409


def test_a_declined_card_fails_the_attempt_and_frees_the_key(api, recording):
    tid = api.tenant()
    pm = api.card(tid, "4000000000000002")
    headers = {"Idempotency-Key": "k"}
    assert _order(api, tid, "60.00", pm, headers=headers).status_code == 402
    assert [a.status for a in _attempts(api)] == ["failed"]
    assert _order(api, tid, "60.00", pm, headers=headers).status_code == 402  # tried again
    good = api.card(tid)  # the key is free again, as if the refusal never happened
    assert _order(api, tid, "60.00", good, headers=headers).status_code == 201
    assert _order(api, tid, "60.00", pm, headers=headers).status_code == 409


@pytest.mark.parametrize("amount", ["100000.01", "99999999999999.99", "9223372036854.77"])
def test_amounts_above_the_maximum_are_refused_before_paying(api, recording, amount):
    tid = api.tenant()
    pm = api.card(tid)
    r = api.order(tid, amount, pm)
    assert r.status_code == 422, r.text
    assert _statement(recording) == {} and _attempts(api) == []
    assert api.order(tid, "100000.00", pm).status_code == 201
    assert api.order(tid, "60.00", pm).status_code == 201  # the tenant can still order
    r = api.put(f"/v1/tenants/{tid}/credits/auto-recharge",
                {"enabled": True, "trigger_amount": "10.00", "recharge_amount": amount,
                 "payment_method_id": pm})
    assert r.status_code == 422


def test_reconcile_cli(api, db_url, recording, monkeypatch):
    from typer.testing import CliRunner

    from commcredits.entrypoints.cli import app as cli
    tid = api.tenant()
    pm = api.card(tid)
    monkeypatch.setattr(payments, "settle", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("killed")))
    api.order(tid, "70.00", pm)
    monkeypatch.undo()
    monkeypatch.setenv("COMMCREDITS_PAYMENT_GATEWAY", f"recording:{recording.path}")
    monkeypatch.setenv("COMMCREDITS_MANUAL_CLOCK", "true")
    r = CliRunner().invoke(cli, ["payments", "reconcile", "--older-than", "0", "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "1 funded, 0 failed, 0 need review" in r.output
    assert api.credits(tid)["balance"] == "70.00"
