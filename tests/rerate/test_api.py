"""The re-rating API (operator): the dry run's diff and CSV, applying it once, the audit
entry and the usage report's original charge; bad requests answer 4xx naming the field and
change nothing."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import sqlalchemy as sa

from commcredits.services.ledger import verify
from tests.api.voice import DECK, UK, US, make_voice
from tests.rerate.world import put_deck

DEAR = DECK.replace("44,United Kingdom,any,0.0200,0.0000,60",
                    "44,United Kingdom,any,0.0500,0.0000,60")
PERIOD = {"from": "2030-03-01", "to": "2030-03-31"}


def _voice(api):
    voice = make_voice(api)
    voice.fund("5.00")
    for call_id, to in (("uk", UK), ("us", US)):
        voice.call(call_id, to)
        voice.end(call_id, 600)  # UK 0.20 → 0.50; US 0.10, unchanged
    return voice


def test_dry_run_diff_csv_apply_audit_and_report(api):
    voice = _voice(api)
    put_deck(api, DEAR)
    dry = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD}, expect=200).json()
    assert dry["status"] == "dry_run" and dry["deck"] is None
    assert dry["calls"] == [{"tenant_id": voice.tid, "call_id": "uk",
                             "usage_id": dry["calls"][0]["usage_id"], "old_charge": "0.20",
                             "new_charge": "0.50", "delta": "0.30"}]
    (t,) = dry["tenants"]
    assert (t["calls"], t["corrected"], t["old_total"], t["new_total"], t["delta"],
            t["balance_delta"], t["deck"]) == (2, 1, "0.30", "0.60", "0.30", "-0.30", "USD@2")
    assert dry["currencies"] == [{"currency": "USD", "tenants": 1, "calls": 2, "corrected": 1,
                                  "old_total": "0.30", "new_total": "0.60", "delta": "0.30",
                                  "balance_delta": "-0.30", "forfeiture_delta": "0.00",
                                  "uncollected_delta": "0.00"}]
    assert api.get(f"/v1/rerates/{dry['id']}", expect=200).json() == dry
    text = api.get(f"/v1/rerates/{dry['id']}?format=csv", expect=200).text
    assert list(csv.reader(io.StringIO(text)))[1][1:] == [
        "uk", dry["calls"][0]["usage_id"], "0.20", "0.50", "0.30"]
    assert voice.credits()["balance"] == "4.70"  # a dry run moves nothing

    done = api.post(f"/v1/rerates/{dry['id']}/apply", expect=200).json()
    assert done["status"] == "applied" and voice.credits()["balance"] == "4.40"
    kinds = [t["kind"] for t in api.get(f"/v1/tenants/{voice.tid}/credits/transactions")
             .json()]
    assert kinds.count("correction") == 1 and kinds.count("usage") == 2
    entries = api.get(f"/v1/tenants/{voice.tid}/audit", expect=200).json()["entries"]
    assert [e["action"] for e in entries].count("rerate.apply") == 1
    rows = api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?from=2030-03-01&"
                   "to=2030-03-31").json()
    got = {r["Call ID"]: (r["Charge"], r["Original Charge"]) for r in rows}
    assert got == {"uk": ("0.50", "0.20"), "us": ("0.10", "0.10")}
    # the CSV keeps its 20 columns and shows the corrected price
    files = api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?from=2030-03-01&"
                    "to=2030-03-31&format=csv").text
    lines = list(csv.reader(io.StringIO(files)))
    assert len(lines[0]) == 20 and {r[1]: r[17] for r in lines[1:]}["uk"] == "0.50"
    # applying again, or a new run of the same request, corrects nothing twice
    api.post(f"/v1/rerates/{dry['id']}/apply", expect=200)
    again = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD, "apply": True},
                     expect=200).json()
    assert again["calls"] == [] and voice.credits()["balance"] == "4.40"
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def test_a_dry_run_made_stale_by_another_apply_is_refused(api):
    voice = _voice(api)
    put_deck(api, DEAR)
    first = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD}, expect=200).json()
    second = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD}, expect=200).json()
    api.post(f"/v1/rerates/{first['id']}/apply", expect=200)
    late = api.post(f"/v1/rerates/{second['id']}/apply", expect=200).json()
    assert late["applied"] == [{"tenant_id": voice.tid, "result": "rerate_stale"}]
    assert late["status"] == "dry_run" and voice.credits()["balance"] == "4.40"


def test_an_idempotency_key_answers_the_same_run(api):
    voice = _voice(api)
    body = {"tenant_id": voice.tid, **PERIOD}
    h = {"Idempotency-Key": "rerate-1"}
    one = api.post("/v1/rerates", body, headers=h, expect=200).json()
    two = api.post("/v1/rerates", body, headers=h, expect=200).json()
    assert one["id"] == two["id"]


def test_bad_requests_name_the_field_and_change_nothing(api):
    voice = _voice(api)

    def error(body, status=422, key=None):
        r = api.post("/v1/rerates", body, key=key)
        assert r.status_code == status, r.text
        return r.json()["error"]

    assert "from" in error({"to": "2030-03-31"})["message"]
    assert "to" in error({"from": "2030-03-01"})["message"]
    assert "from" in error({"from": "2030-13-01", "to": "2030-03-31"})["message"]
    assert error({"from": "2030-03-31", "to": "2030-03-01"})["code"] == "validation_error"
    assert "deck" in error({**PERIOD, "deck": "usd7"})["message"]
    assert "apply" in error({**PERIOD, "apply": "yes"})["message"]
    assert error({**PERIOD, "deck": "USD@9"}, 409)["code"] == "deck_version_not_current"
    assert error({**PERIOD, "deck": "EUR@1"}, 404)["code"] == "not_found"
    assert error({**PERIOD, "tenant_id": "tnt_nope"}, 404)["code"] == "not_found"
    assert error(PERIOD, 403, key=voice.switch)["code"] == "forbidden"
    assert error(PERIOD, 403, key=api.new_key("global_admin", voice.tid))["code"] == \
        "forbidden"
    assert api.get("/v1/rerates/rrt_nope").status_code == 404
    assert api.post("/v1/rerates/rrt_nope/apply").status_code == 404
    with api.rt.db.uow() as uow:
        assert uow.conn.execute(sa.text("SELECT count(*) FROM rerate_runs")).scalar() == 0


def test_the_verifier_finds_usage_records_that_disagree_with_the_ledger(api):
    voice = _voice(api)
    put_deck(api, DEAR)
    api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD, "apply": True}, expect=200)
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []
        uow.conn.execute(sa.text("UPDATE usage_records SET credits_charge = credits_charge + 1"
                                 " WHERE ref = 'uk'"))
        problems = verify(uow)[1]
    assert [p.what for p in problems] == ["usage records' credits charges"]


def test_a_call_whose_reservation_the_corrections_took_is_cut(api):
    voice = make_voice(api)
    voice.fund("0.40")
    voice.call("uk", UK)
    voice.end("uk", 600)  # 0.20, at deck B 0.50: more than the lot ever held
    grant = voice.call("open", UK)  # a call in progress holds part of what is left
    assert grant["decision"] == "allowed" and voice.credits()["reserved"] != "0.00"
    put_deck(api, DEAR)
    api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD, "apply": True}, expect=200)
    assert voice.credits()["balance"] == "0.00"
    rows = {r["Call ID"]: (r["Charge"], r["Uncollected"]) for r in api.get(
        f"/v1/tenants/{voice.tid}/reports/pstn-usage?from=2030-03-01&to=2030-03-31").json()}
    assert rows["uk"] == ("0.40", "0.10")
    told = voice.interim("open", 10)
    assert told["continue"] is False and told["reason"] == "insufficient_credits"
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def test_a_correction_below_the_trigger_starts_an_auto_recharge(api):
    voice = _voice(api)  # 5.00 funded, 4.70 left
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": True, "recharge_amount": "10.00", "trigger_amount": "4.50",
             "payment_method_id": voice.card}, expect=200)
    put_deck(api, DEAR)
    api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD, "apply": True}, expect=200)
    assert voice.credits()["balance"] == "14.40"  # 4.40 after the correction, then +10.00
    assert "auto_recharge" in voice.txn_kinds()


def test_a_call_whose_split_cannot_be_reproduced_is_left_alone_and_listed(api):
    voice = _voice(api)
    put_deck(api, DEAR)
    with api.rt.db.uow() as uow:  # a stored overage that its route could never have made
        uow.conn.execute(sa.text("UPDATE usage_records SET overage_charge = 10000 "
                                 "WHERE ref = 'uk'"))
        uow.commit()
    dry = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD}, expect=200).json()
    assert dry["calls"] == [] and dry["tenants"][0]["skipped"] == 1
    assert [(s["call_id"], s["reason"]) for s in dry["skipped"]] == [
        ("uk", "split_not_reproducible")]


def test_a_corrected_call_explains_its_correction_and_still_adds_up(api):
    voice = _voice(api)
    put_deck(api, DEAR)
    dry = api.post("/v1/rerates", {"tenant_id": voice.tid, **PERIOD}, expect=200).json()
    api.post(f"/v1/rerates/{dry['id']}/apply", expect=200)
    e = api.get(f"/v1/tenants/{voice.tid}/calls/uk/explanation", expect=200).json()
    assert [(c["rerate_id"], c["old_charge"], c["new_charge"], c["delta"])
            for c in e["corrections"]] == [(dry["id"], "0.20", "0.50", "0.30")]
    assert e["charge"] == "0.50"
    parts = sum(Decimal(x["amount"]) for x in e["lots"]) + Decimal(e["overage"]) + Decimal(
        e["uncollected"])
    assert parts == Decimal(e["charge"])  # the lots as the correction left them
    untouched = api.get(f"/v1/tenants/{voice.tid}/calls/us/explanation", expect=200).json()
    assert untouched["corrections"] == [] and untouched["charge"] == "0.10"
