"""What a real switch needs (issue: Kamailio + SIPp in front): the answer event, authorizations
that lapse, silent calls settled at what was reported and corrected by a later ``end``,
``final``/``validity_s``, SIP responses, call ids in the body, tenant resolution, CDRs over HTTP.
"""

from __future__ import annotations

from tests.api.voice import TOLL_FREE, UK, UK_MOBILE, US, ledger_ok


def answer(voice, call_id, **body):
    return voice.api.post(f"/v1/calls/{call_id}/answer", body or None, key=voice.switch,
                          expect=200).json()


def usage_row(voice, call_id):
    rows = voice.api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?days=7",
                         expect=200).json()
    return next(r for r in rows if r["Call ID"] == call_id)


# -- 1. a call the switch refused (our answer came too late) costs nothing --------------------
def test_authorization_processed_after_the_switch_gave_up_costs_nothing(voice, api):
    # the switch timed out and answered 503; our late decision reserved a slice anyway
    d = voice.call("late", UK)
    assert d["decision"] == "allowed" and d["auth_ttl_s"] == 120
    api.set_clock("2030-03-10T12:10:00Z")  # far past grant + grace: before, this charged 0.10
    c = voice.credits()
    assert (c["balance"], c["reserved"]) == ("50.00", "0.00")
    assert voice.txn_kinds() == ["order"]
    rows = api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?days=7", expect=200).json()
    assert [r for r in rows if r["Call ID"] == "late"] == []
    ledger_ok(api)


# -- 2. ringing is not billable ---------------------------------------------------------------
def test_a_call_ringing_90_s_then_talking_30_s_is_billed_30_s(voice, api):
    voice.call("ring", UK_MOBILE)  # 0.10/min + 0.05 fee, 1 s increments
    api.set_clock("2030-03-10T12:01:30Z")  # 90 s of ringing: more than grant lead + grace
    a = answer(voice, "ring")
    assert a["continue"] is True and a["max_duration_s"] > 0
    api.set_clock("2030-03-10T12:02:00Z")
    end = voice.end("ring", 30)
    assert end["charge"] == "0.10"  # 0.05 + 30 s * 0.10/60
    row = usage_row(voice, "ring")
    assert row["Start Time"].startswith("2030-03-10T12:01:30")
    assert row["End Time"].startswith("2030-03-10T12:02:00")
    ledger_ok(api)


def test_the_silent_clock_runs_from_the_answer(voice, api):
    voice.call("r2", UK)  # grant 300 s
    api.set_clock("2030-03-10T12:01:50Z")
    answer(voice, "r2")
    # 300 s grant + 60 s grace counted from the answer, not from the authorization
    assert api.set_clock("2030-03-10T12:07:49Z")["jobs"]["calls"] == 0
    assert voice.interim("r2", 280)["continue"] is True


def test_answer_after_the_authorization_lapsed_reserves_again(voice, api):
    voice.call("r3", UK)
    api.set_clock("2030-03-10T12:03:00Z")  # lapsed at 120 s: reservation released
    assert voice.credits()["reserved"] == "0.00"
    a = answer(voice, "r3")
    assert a["continue"] is True and a["max_duration_s"] == 300
    assert voice.credits()["reserved"] == "0.10"
    assert voice.end("r3", 60)["charge"] == "0.02"
    assert voice.credits()["reserved"] == "0.00"
    ledger_ok(api)


def test_answer_is_idempotent_and_may_carry_its_own_time(voice, api):
    voice.call("r4", UK)
    api.set_clock("2030-03-10T12:00:40Z")
    answer(voice, "r4", answered_at="2030-03-10T12:00:20Z")
    api.set_clock("2030-03-10T12:00:50Z")
    answer(voice, "r4")  # a retransmission: the first answer stands
    voice.end("r4", 30)
    assert usage_row(voice, "r4")["Start Time"].startswith("2030-03-10T12:00:20")


def test_a_switch_without_answer_events_keeps_working(voice, api):
    voice.call("legacy", UK)
    api.set_clock("2030-03-10T12:01:30Z")
    assert voice.interim("legacy", 90)["continue"] is True  # a sign of life
    api.set_clock("2030-03-10T12:03:00Z")  # past 120 s: heard from, so not lapsed
    assert voice.credits()["reserved"] == "0.14"  # 90 s + a 300 s slice: 7 minutes
    assert voice.end("legacy", 150)["charge"] == "0.06"
    ledger_ok(api)


def test_end_of_a_lapsed_authorization_still_bills_the_talk(voice, api):
    voice.call("quiet", UK)  # a switch that sends neither answer nor interim
    api.set_clock("2030-03-10T12:05:00Z")
    assert voice.credits()["reserved"] == "0.00"
    assert voice.end("quiet", 240)["charge"] == "0.08"
    assert voice.credits()["balance"] == "49.92"
    ledger_ok(api)


# -- 3. a silent answered call, then the real end --------------------------------------------
def silent_call(voice, api, call_id):
    voice.call(call_id, UK)  # 0.02/min, 60 s increments; grant 300 s
    answer(voice, call_id)
    api.set_clock("2030-03-10T12:02:00Z")
    assert voice.interim(call_id, 120)["max_duration_s"] == 420
    assert api.set_clock("2030-03-10T12:08:01Z")["jobs"]["calls"] == 1  # 420 + 60 s


def test_silent_call_is_settled_at_what_was_reported(voice, api):
    silent_call(voice, api, "q1")
    c = voice.credits()
    assert (c["balance"], c["reserved"]) == ("49.96", "0.00")  # 120 s reported: 2 minutes


def test_silent_call_policy_granted_charges_the_whole_grant(voice, api):
    from commcredits.domain.call_clock import SilentCharge
    api.rt.settings.silent_charge = SilentCharge.GRANTED
    voice.call("q2", UK)
    answer(voice, "q2")
    assert api.set_clock("2030-03-10T12:06:01Z")["jobs"]["calls"] == 1
    assert voice.credits()["balance"] == "49.90"  # the whole 300 s grant


def test_a_later_longer_end_charges_the_difference_once(voice, api):
    silent_call(voice, api, "q3")
    end = voice.end("q3", 400)  # 7 minutes: 0.14, 0.04 already taken
    assert (end["charge"], end["duration_s"]) == ("0.14", 400)
    assert voice.credits()["balance"] == "49.86"
    assert voice.end("q3", 400) == end  # repeating changes nothing
    assert voice.end("q3", 999) == end  # nor does a different duration now
    assert voice.credits()["balance"] == "49.86"
    assert voice.txn_kinds() == ["order", "usage", "usage"]
    row = usage_row(voice, "q3")
    assert (row["Duration Seconds"], row["Charge"]) == (400, "0.14")
    ledger_ok(api)


def test_a_later_shorter_end_gives_money_back_to_its_lot(voice, api):
    silent_call(voice, api, "q4")
    end = voice.end("q4", 30)  # 1 minute: 0.02, 0.04 taken
    assert end["charge"] == "0.02"
    c = voice.credits()
    assert (c["balance"], c["lots"][0]["remaining"]) == ("49.98", "49.98")
    txns = api.get(f"/v1/tenants/{voice.tid}/credits/transactions").json()
    assert [(t["kind"], t["amount"]) for t in txns] == [
        ("order", "50.00"), ("usage", "-0.04"), ("adjustment", "0.02")]
    assert usage_row(voice, "q4")["Charge"] == "0.02"
    ledger_ok(api)


# -- 4. final and validity_s ------------------------------------------------------------------
def test_final_grant_stops_the_polling(voice, api):
    voice.call("big", UK_MOBILE)
    voice.end("big", 29820)  # leaves 0.25
    d = voice.call("f1", UK_MOBILE)
    assert (d["max_duration_s"], d["final"]) == (122, True) and "validity_s" not in d
    again = voice.interim("f1", 110)
    assert again == {"continue": True, "max_duration_s": 122, "final": True}


def test_not_final_while_an_auto_recharge_can_bring_more(voice, api):
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": True, "recharge_amount": "50.00", "trigger_amount": "5.00",
             "payment_method_id": voice.card}, expect=200)
    voice.call("big", UK_MOBILE)
    voice.end("big", 29820)
    assert voice.credits()["balance"] == "50.25"  # recharged at once
    d = voice.call("f2", UK_MOBILE)
    assert d["final"] is False and d["validity_s"] == 270


# -- 5. SIP responses, call ids, tenant resolution ---------------------------------------------
def test_refusals_carry_their_sip_response(voice, api):
    d = voice.call("n1", US, upn="bare@contoso.com")
    assert (d["reason"], d["sip_code"], d["sip_reason"]) == ("no_calling_plan", 403,
                                                            "Forbidden")
    d = voice.call("n2", "+1", upn="payg@contoso.com")
    assert (d["reason"], d["sip_code"]) == ("invalid_number", 484)


def test_any_sip_call_id_works_in_the_body(voice, api):
    cid = "a84b4c76e66710/x?y=1@pc33.atlanta.example.com"
    assert voice.call(cid, UK)["decision"] == "allowed"
    s = voice.switch
    r = api.post("/v1/calls/answer", {"call_id": cid}, key=s, expect=200).json()
    assert r["continue"] is True
    r = api.post("/v1/calls/interim", {"call_id": cid, "elapsed_s": 30}, key=s, expect=200)
    assert r.json()["continue"] is True
    end = api.post("/v1/calls/end", {"call_id": cid, "duration_s": 61}, key=s, expect=200)
    assert end.json()["charge"] == "0.04" and end.json()["call_id"] == cid


def test_tenant_found_from_its_number_or_sip_domain(voice, api):
    api.post(f"/v1/tenants/{voice.tid}/numbers", {"number": TOLL_FREE, "type": "toll_free"},
             expect=201)
    body = {"call_id": "tf", "call_type": "ucap_in", "from": UK, "to": TOLL_FREE}
    d = api.post("/v1/calls", body, key=voice.switch, expect=200).json()
    assert (d["decision"], d["tenant_id"]) == ("allowed", voice.tid)
    api.put(f"/v1/tenants/{voice.tid}/sip-domains", {"domains": ["Contoso.Example."]},
            expect=200)
    assert api.get(f"/v1/tenants/{voice.tid}/sip-domains").json()["domains"] == [
        "contoso.example"]
    body = {"call_id": "sd", "call_type": "user_out", "from": US, "to": UK,
            "upn": "payg@contoso.com", "sip_domain": "contoso.example"}
    assert api.post("/v1/calls", body, key=voice.switch, expect=200).json()["tenant_id"] \
        == voice.tid
    other = api.tenant()
    r = api.put(f"/v1/tenants/{other}/sip-domains", {"domains": ["contoso.example"]},
                expect=409)
    assert r.json()["error"]["code"] == "already_exists"
    api.put(f"/v1/tenants/{other}/sip-domains", {"domains": ["not a domain"]}, expect=422)
    body = {"call_id": "nobody", "call_type": "user_out", "from": "+14255550777", "to": UK}
    r = api.post("/v1/calls", body, key=voice.switch, expect=404)
    assert r.json()["error"]["code"] == "tenant_unresolved"
    admin = api.new_key("global_admin", voice.tid)
    api.put(f"/v1/tenants/{voice.tid}/sip-domains", {"domains": ["x.example"]}, key=admin,
            expect=403)


# -- 6. CDRs over HTTP --------------------------------------------------------------------------
def test_cdrs_over_http_are_rated_once(voice, api):
    body = {"cdrs": [
        {"call_id": "off1", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
         "to": UK, "upn": "payg@contoso.com", "start_time": "2030-03-10T11:00:00Z",
         "duration_s": 120},
        {"call_id": "off2", "tenant_id": voice.tid, "call_type": "user_out", "from": US,
         "to": US, "upn": "bare@contoso.com", "start_time": "2030-03-10T11:05:00Z",
         "duration_s": 60},
        {"call_id": "off3", "tenant_id": "tnt_missing", "call_type": "user_out", "from": US,
         "to": UK, "start_time": "2030-03-10T11:05:00Z", "duration_s": 60},
    ]}
    out = api.post("/v1/cdrs", body, key=voice.switch, expect=200).json()["results"]
    assert [(r["call_id"], r["status"]) for r in out] == [
        ("off1", "rated"), ("off2", "blocked"), ("off3", "error")]
    assert out[0]["charge"] == "0.04" and out[2]["error"] == "not_found"
    again = api.post("/v1/cdrs", body, key=voice.switch, expect=200).json()["results"]
    assert [r["status"] for r in again[:2]] == ["duplicate", "duplicate"]
    assert voice.credits()["balance"] == "49.96"
    api.post("/v1/cdrs", {"cdrs": []}, key=voice.switch, expect=422)
    admin = api.new_key("global_admin", voice.tid)
    api.post("/v1/cdrs", body, key=admin, expect=403)
    ledger_ok(api)


def test_a_cdr_for_a_call_authorized_late_settles_that_call(voice, api):
    """Fail-open: the switch gave up on our answer and let the call through; our late
    authorization still created the call. Its CDR settles it instead of being a duplicate."""
    voice.call("fo1", UK)  # arrived after the switch's timeout: never answered
    voice.call("fo2", UK)
    api.set_clock("2030-03-10T12:03:00Z")  # fo1 and fo2 lapse (nothing charged)
    cdr = {"tenant_id": voice.tid, "call_type": "user_out", "from": US, "to": UK,
           "upn": "payg@contoso.com", "start_time": "2030-03-10T12:00:05Z", "duration_s": 150}
    out = api.post("/v1/cdrs", {"cdrs": [{**cdr, "call_id": "fo1"}, {**cdr, "call_id": "fo2"}]},
                   key=voice.switch, expect=200).json()["results"]
    assert [(r["status"], r["charge"]) for r in out] == [("rated", "0.06"), ("rated", "0.06")]
    again = api.post("/v1/cdrs", {"cdrs": [{**cdr, "call_id": "fo1"}]}, key=voice.switch,
                     expect=200).json()["results"]
    assert again[0]["status"] == "duplicate"
    c = voice.credits()
    assert (c["balance"], c["reserved"]) == ("49.88", "0.00")
    assert usage_row(voice, "fo1")["Start Time"].startswith("2030-03-10T12:00:05")
    ledger_ok(api)
