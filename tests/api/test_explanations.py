"""Charge explanations (issue 21): every usage record says why it cost what it did, from what
was stored when it settled; the parts always add up to the charge."""

from __future__ import annotations

from decimal import Decimal

from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.test_switch_events import silent_call
from tests.api.voice import UK, US, make_voice

DOMESTIC = "+12065550123"


def _explain(api, tid, call_id, key=None, expect=200):
    return api.get(f"/v1/tenants/{tid}/calls/{call_id}/explanation", key=key, expect=expect)


def _adds_up(e):
    parts = sum((Decimal(x["amount"]) for x in e["lots"]), Decimal(0))
    assert parts + Decimal(e["overage"]) + Decimal(e["uncollected"]) == Decimal(e["charge"])


def test_a_call_through_a_pool_two_lots_and_overage_adds_up(api):
    voice = make_voice(api)
    voice.fund("0.03")
    api.set_clock("2030-03-11T12:00:00Z")
    voice.fund("0.02")
    first, second = sorted(voice.credits()["lots"], key=lambda x: x["purchased_at"])
    api.patch(f"/v1/tenants/{voice.tid}", {"commerce": "nce", "overage_enabled": True},
              expect=200)
    # the domestic pool (two MCOPSTN1 holders: 6000 min) used up to its last 2 minutes
    voice.call("big", DOMESTIC, upn="dom@contoso.com")
    voice.end("big", 5998 * 60)
    voice.call("x", DOMESTIC, upn="dom@contoso.com")
    end = voice.end("x", 12 * 60)  # 2 min pool, 5 min on 0.05 of credits, 5 min overage
    e = _explain(api, voice.tid, "x").json()
    _adds_up(e)
    assert e["charge"] == "0.10" and end["charge"] == e["collected"] == "0.10"
    assert e["pool"] == {"pool": e["pool"]["pool"], "minutes": 2, "used_before": 5998,
                         "used_after": 6000}
    assert [(x["lot_id"], x["amount"]) for x in e["lots"]] == [
        (first["id"], "0.03"), (second["id"], "0.02")]  # FIFO: oldest purchase first
    assert [x["expires_at"] for x in e["lots"]] == [first["expires_at"], second["expires_at"]]
    assert (e["overage"], e["uncollected"], e["funding"]) == ("0.05", "0.00", end["funding"])
    assert e["rate"] == {"deck_version": 1, "prefix": "1", "destination": "United States",
                         "number_type": "any", "per_minute": "0.01",
                         "connection_fee": "0.00", "increment_s": 60}
    assert (e["duration_s"], e["billed_s"]) == (720, 600)
    assert e["rounding"]["pool_minutes"] == 2
    txns = api.get(f"/v1/tenants/{voice.tid}/credits/transactions").json()
    usage = [t for t in txns if t["kind"] == "usage"]
    assert e["ledger_transaction_id"] in {t["id"] for t in usage}
    assert e["corrections"] == []
    assert (e["route"]["paid_by"], e["route"]["upn"]) == ("user", "dom@contoso.com")
    s = api.get(f"/v1/tenants/{voice.tid}/statements/2030-03", expect=200).json()
    assert (s["usage"]["domestic"], s["overage"], s["closing_balance"]) == (
        "0.05", "0.05", "0.00")  # overage is billed apart: not part of the balance


def test_rounding_and_uncollected_are_explained(api):
    voice = make_voice(api)
    voice.fund("0.02")
    voice.call("short", UK)  # 0.02 buys one minute
    voice.end("short", 150)  # the switch let it run: 3 increments of 60 s at 0.02
    e = _explain(api, voice.tid, "short").json()
    _adds_up(e)
    assert (e["charge"], e["collected"], e["uncollected"]) == ("0.06", "0.02", "0.04")
    assert (e["duration_s"], e["billed_s"], e["rounding"]["credit_billed_s"]) == (150, 180, 180)
    assert e["pool"] is None and e["overage"] == "0.00"


def test_a_cdr_rated_call_is_explained_as_the_same_live_call(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("5.00")
    voice.call("live", UK)
    voice.end("live", 200)
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"cdr,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-10T12:00:00Z,200\n")
    r = CliRunner().invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 0, r.output
    live, cdr = (_explain(api, voice.tid, c).json() for c in ("live", "cdr"))
    ids = ("call_id", "usage_id", "ledger_transaction_id", "ledger_transaction_ids")
    assert live["ledger_transaction_id"] != cdr["ledger_transaction_id"]
    assert {k: v for k, v in live.items() if k not in ids} == \
        {k: v for k, v in cdr.items() if k not in ids}
    assert live["charge"] == "0.08" and live["billed_s"] == 240


def test_an_sms_is_explained(api):
    voice = make_voice(api)
    voice.fund("1.00")
    api.post("/v1/sms", {"message_id": "m1", "tenant_id": voice.tid, "upn": "payg@contoso.com",
                         "from": US, "to": UK, "direction": "out", "segments": 3},
             key=voice.switch, expect=200)
    e = api.get(f"/v1/tenants/{voice.tid}/sms/m1/explanation", expect=200).json()
    _adds_up(e)
    assert (e["message_id"], e["segments"], e["charge"]) == ("m1", 3, "0.15")
    assert e["rate"]["number_type"] == "sms" and e["rate"]["deck_version"] == 1
    assert len(e["lots"]) == 1 and e["lots"][0]["expires_at"].startswith("2031-03-10")
    assert "duration_s" not in e


def test_who_may_read_an_explanation(api):
    voice = make_voice(api)
    voice.fund("1.00")
    voice.call("c1", UK)
    voice.call("open", UK)
    voice.end("c1", 60)
    reader = api.new_key("reports_reader", voice.tid)
    assert _explain(api, voice.tid, "c1", key=reader).json()["charge"] == "0.02"
    other = api.tenant("US")
    r = _explain(api, voice.tid, "c1", key=api.new_key("global_admin", other), expect=404)
    assert r.json()["error"]["code"] == "not_found"
    _explain(api, voice.tid, "c1", key=voice.switch, expect=403)
    _explain(api, voice.tid, "c1", key="nope", expect=401)
    assert _explain(api, voice.tid, "open", expect=404).json()["error"]["code"] == "not_found"
    _explain(api, other, "c1", expect=404)  # another tenant's call is not this one's
    api.get(f"/v1/tenants/{voice.tid}/sms/none/explanation", expect=404)


def test_a_late_end_that_corrects_a_silent_call_is_explained(voice, api):
    silent_call(voice, api, "q")  # settled by silence at 120 s: 0.04
    first = _explain(api, voice.tid, "q").json()
    assert (first["charge"], len(first["ledger_transaction_ids"])) == ("0.04", 1)
    voice.end("q", 30)  # the switch says 30 s: 0.02, the rest back to its lot
    e = _explain(api, voice.tid, "q").json()
    _adds_up(e)
    assert (e["charge"], e["duration_s"], e["billed_s"]) == ("0.02", 30, 60)
    assert [x["amount"] for x in e["lots"]] == ["0.02"]
    txns = api.get(f"/v1/tenants/{voice.tid}/credits/transactions").json()
    assert e["ledger_transaction_ids"] == [t["id"] for t in txns
                                           if t["kind"] in ("usage", "adjustment")]
    s = api.get(f"/v1/tenants/{voice.tid}/statements/2030-03", expect=200).json()
    assert s["usage"]["international"] == s["usage"]["total"] == "0.02"


def test_a_new_deck_does_not_change_what_an_old_call_says(api):
    voice = make_voice(api)
    voice.fund("5.00")
    voice.call("before", UK)
    voice.end("before", 60)
    was = _explain(api, voice.tid, "before").json()
    deck = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" \
           "44,United Kingdom,any,0.5000,0.1000,1\n"
    r = api.client.put("/v1/rate-decks/USD", content=deck.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    voice.call("after", UK)
    voice.end("after", 60)
    assert _explain(api, voice.tid, "before").json() == was
    now = _explain(api, voice.tid, "after").json()
    assert (was["rate"]["deck_version"], now["rate"]["deck_version"]) == (1, 2)
    assert Decimal(now["rate"]["per_minute"]) == Decimal("0.5") and now["charge"] == "0.60"
