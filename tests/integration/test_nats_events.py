"""Domain events published to NATS JetStream from the outbox (issue 11 §2): subjects
``<prefix>.<tenant>.<kind>``, the dedupe id as ``Nats-Msg-Id``, each event once even when the
job publishes it again."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.nats_bus import NatsEventBus
from commcredits.services import cdrs, jobs
from tests.api.voice import FRANCE, UK, US, ledger_ok, make_voice


def _events_on(api, bus) -> None:
    api.rt.bus = NatsEventBus(bus.url, bus.events_stream, f"{bus.events_prefix}.>")
    api.rt.settings.nats_events_prefix = bus.events_prefix


def _publish(api) -> int:
    return jobs.run(api.rt.jobs(), "events")["events"]


def _outbox(api) -> list[tuple[str, str, bool]]:
    with api.rt.db.uow() as uow:
        return [(r[0], r[1], r[2] is not None) for r in uow.conn.exec_driver_sql(
            "SELECT kind, dedupe, published_at FROM domain_events ORDER BY kind, dedupe")]


def _auto(api, voice, pm: str, trigger: str) -> None:
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": True, "recharge_amount": "50.00", "trigger_amount": trigger,
             "payment_method_id": pm}, expect=200)


def _spend(voice, call_id: str) -> dict[str, Any]:
    voice.call(call_id, FRANCE)
    return voice.end(call_id, 12000)  # 0.01 + 200 min * 0.03 = 6.01


def test_events_reach_jetstream_once_with_their_subjects_and_ids(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("55.00")
    api.rt.settings.grant_slice_s = 20000
    _events_on(api, bus)
    assert _publish(api) == 0  # the first run turns the capture of settled calls on
    _auto(api, voice, voice.card, "50.00")
    assert _spend(voice, "c1")["charge"] == "6.01"  # below 50: recharged (98.99)
    # a card that could pay on 10 March and expires with it
    expiring = api.post(f"/v1/tenants/{voice.tid}/payment-methods",
                        {"type": "card", "card_number": "4242424242424242", "exp_month": 3,
                         "exp_year": 2030}, expect=201).json()["id"]
    _auto(api, voice, expiring, "95.00")
    api.set_clock("2030-04-01T12:00:00Z")
    _spend(voice, "c2")  # below 95 again: the expired card fails
    rated = list(cdrs.rate_all(api.rt.db, cdrs.from_rows([{  # the batch path (COPY)
        "call_id": "k1", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
        "to": UK, "upn": "payg@contoso.com", "start_time": "2030-03-10T11:00:00Z",
        "duration_s": 61}])))
    assert [r.status for r in rated] == ["rated"]
    api.set_clock("2031-04-01T00:00:00Z")  # both lots expire (a year on); jobs run, events too
    kinds = {k for k, _, _ in _outbox(api)}
    assert kinds == {"call_settled", "balance_below_trigger", "recharge_succeeded",
                     "recharge_failed", "lot_expired", "balance_zero"}
    assert all(published for _, _, published in _outbox(api))
    stored = bus.messages(bus.events_stream)
    assert len(stored) == len(_outbox(api))
    ids = [h["Nats-Msg-Id"] for _, _, h in stored]
    assert len(set(ids)) == len(ids)
    events = [json.loads(body) for _, body, _ in stored]
    for (subject, _, headers), event in zip(stored, events, strict=True):
        assert subject == f"{bus.events_prefix}.{voice.tid}.{event['kind']}"
        assert headers["Nats-Msg-Id"] == event["id"]
        assert event["tenant_id"] == voice.tid and event["schema"] == 1
    # each event's id is its outbox row's (tenant:dedupe key), and every row was published
    assert {e["id"] for e in events} == {f"{voice.tid}:{d}" for _, d, _ in _outbox(api)}
    settled = {e["data"]["call_id"]: e["data"] for e in events if e["kind"] == "call_settled"}
    assert set(settled) == {"c1", "c2", "k1"}
    assert settled["c1"]["charge"] == "6.01" and settled["c1"]["currency"] == "USD"
    assert settled["k1"]["charge"] == "0.04" and settled["k1"]["duration_s"] == 61
    by_kind = {e["kind"]: e["data"] for e in events}
    assert by_kind["recharge_succeeded"]["amount"] == "50.00"
    assert by_kind["recharge_failed"]["reason"] == "card_expired"
    assert by_kind["balance_zero"]["balance"] == "0.00"
    # the job again: nothing left to publish
    assert _publish(api) == 0
    # a crash after publishing, before marking: published again, JetStream drops the repeats
    with api.rt.db.uow() as uow:
        uow.conn.execute(sa.text("UPDATE domain_events SET published_at = NULL"))
        uow.commit()
    assert _publish(api) == len(stored)
    assert len(bus.messages(bus.events_stream)) == len(stored)
    ledger_ok(api)


def test_without_nats_nothing_is_captured_per_call(api, db_url):
    voice = make_voice(api)
    voice.fund("55.00")
    assert api.rt.bus is None  # COMMCREDITS_NATS_URL unset
    assert _publish(api) == 0
    _spend(voice, "c1")
    assert _outbox(api) == []  # no row per settled call without a publisher


def test_nats_away_keeps_the_events_for_later(api, db_url, bus):
    voice = make_voice(api)
    voice.fund("55.00")
    api.rt.settings.grant_slice_s = 20000
    _events_on(api, bus)
    assert _publish(api) == 0
    good = api.rt.bus
    api.rt.bus = NatsEventBus("nats://127.0.0.1:8149", bus.events_stream,  # nothing there
                              f"{bus.events_prefix}.>")
    _spend(voice, "c1")
    failures: list[tuple[str, str | None]] = []
    ctx = api.rt.jobs()
    ctx.failed = lambda job, row, exc: failures.append((job, row))
    assert jobs.run(ctx, "events") == {"events": 0}
    assert failures == [("events", None)]
    assert _outbox(api) == [("call_settled", _outbox(api)[0][1], False)]
    api.rt.bus = good
    assert _publish(api) == 1
    assert [json.loads(body)["data"]["call_id"] for _, body, _ in
            bus.messages(bus.events_stream)] == ["c1"]
