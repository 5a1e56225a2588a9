"""Issue 9 through the API: overrun settlement, purchased conferencing seats, the NCE overage
setting, the no-rate policy, bot and transfer call types, the shown connection fee."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from commcredits.services.ledger import verify
from tests.api.voice import JAPAN, UK, US, make_voice

CA = "+16135550100"


def _rows(api, tid: str) -> list[dict[str, str]]:
    text = api.get(f"/v1/tenants/{tid}/reports/pstn-usage?from=2030-03-01&to=2030-03-31"
                   "&format=csv", expect=200).text
    return list(csv.DictReader(io.StringIO(text)))


def test_a_call_past_its_grant_is_funded_by_the_pool_first(voice, api):
    """Item 8: a 600 s domestic call on a 300 s grant, no interim."""
    d = voice.call("g1", US, upn="dom@contoso.com")
    assert (d["funding"], d["max_duration_s"]) == ("included", 300)
    end = voice.end("g1", 600)
    assert (end["included_minutes"], end["charge"], end["funding"]) == (10, "0.00",
                                                                       "included")
    assert voice.credits()["balance"] == "50.00"
    pools = {p["pool"]: p for p in api.get(
        f"/v1/tenants/{voice.tid}/reports/minute-pools?month=2030-03").json()}
    # 2 US users on MCOPSTN1 (dom@, nocred@): 6,000 minutes; 10 used
    assert pools["domestic:US:MCOPSTN1"]["minutes_used"] == 10
    assert pools["domestic:US:MCOPSTN1"]["minutes_left"] == 5990


def test_conferencing_pool_is_sized_by_purchased_licences(api):
    """Item 3: 10 purchased MCOMEETADD seats, one assigned: 600 minutes, not 60."""
    v = make_voice(api)
    pools = {p["pool"]: p for p in api.get(
        f"/v1/tenants/{v.tid}/reports/minute-pools?month=2030-03").json()}
    assert pools["conferencing"]["minutes_total"] == 600
    api.post(f"/v1/tenants/{v.tid}/subscriptions", {"sku": "SPE_E5", "quantity": 5},
             expect=201)
    pools = {p["pool"]: p for p in api.get(
        f"/v1/tenants/{v.tid}/reports/minute-pools?month=2030-03").json()}
    assert pools["conferencing"]["minutes_total"] == 900  # E5 counts


def test_120_minute_plan_is_refused_for_a_us_user(api):
    """Item 1 through the API."""
    v = make_voice(api)
    api.post(f"/v1/tenants/{v.tid}/subscriptions", {"sku": "MCOPSTN5", "quantity": 2},
             expect=201)
    r = api.put(f"/v1/tenants/{v.tid}/users/dom@contoso.com/licenses/MCOPSTN5", expect=409)
    assert r.json()["error"]["code"] == "not_available_in_country"
    api.post(f"/v1/tenants/{v.tid}/users", {"upn": "gb@contoso.com", "usage_location": "GB"},
             expect=201)
    api.put(f"/v1/tenants/{v.tid}/users/gb@contoso.com/licenses/MCOPSTN5", expect=200)


def test_us_user_calling_canada_draws_on_the_domestic_pool(voice, api):
    """Item 2 through the API, and the report says Domestic."""
    d = voice.call("ca1", CA, upn="dom@contoso.com")
    assert d["funding"] == "included"
    voice.end("ca1", 60)
    row = _rows(api, voice.tid)[0]
    assert row["Domestic/International"] == "Domestic"


def test_overage_setting_permissions_and_default(api):
    """Item 4: off by default; operator and global admin may turn it on."""
    tid = api.tenant("US", "nce")
    assert api.get(f"/v1/tenants/{tid}", expect=200).json()["overage_enabled"] is False
    admin = api.new_key("global_admin", tid)
    billing = api.new_key("billing_admin", tid)
    api.patch(f"/v1/tenants/{tid}", {"overage_enabled": True}, key=billing, expect=403)
    r = api.patch(f"/v1/tenants/{tid}", {"overage_enabled": True}, key=admin, expect=200)
    assert r.json()["overage_enabled"] is True
    # the no-rate policy is the operator's
    api.patch(f"/v1/tenants/{tid}", {"no_rate": "block"}, key=admin, expect=403)
    r = api.patch(f"/v1/tenants/{tid}", {"no_rate": "sometimes"}, expect=422)
    assert r.json()["error"]["code"] == "validation_error"
    assert api.patch(f"/v1/tenants/{tid}", {"no_rate": "block"}, expect=200).json()[
        "no_rate"] == "block"


def test_nce_tenant_moved_from_legacy_spends_credits_then_stops(api):
    """Item 4: remaining credits first; with overage off the calls then stop."""
    v = make_voice(api)
    v.fund("0.05")
    api.patch(f"/v1/tenants/{v.tid}", {"commerce": "nce"}, expect=200)
    d = v.call("n1", UK)  # 0.02 a minute: 0.05 buys two whole minutes
    assert (d["funding"], d["max_duration_s"]) == ("credits", 120)
    assert v.end("n1", 120)["charge"] == "0.04"
    assert v.call("n2", UK) == {"call_id": "n2", "decision": "blocked",
                                "reason": "overage_disabled", "sip_code": 403,
                                "sip_reason": "Forbidden"}
    api.patch(f"/v1/tenants/{v.tid}", {"overage_enabled": True}, expect=200)
    assert v.call("n3", UK)["funding"] == "overage"
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def test_nce_overage_off_blocks_after_the_pool(api):
    v = make_voice(api, "nce")
    d = v.call("p1", US, upn="nocred@contoso.com")
    assert d["funding"] == "included"  # the pool works without overage
    d = v.call("p2", UK, upn="nocred@contoso.com")
    assert d == {"call_id": "p2", "decision": "blocked", "reason": "overage_disabled",
                 "sip_code": 403, "sip_reason": "Forbidden"}


def test_no_rate_policy_block(voice, api):
    """Item 15."""
    assert voice.call("j1", JAPAN)["funding"] == "free"
    api.patch(f"/v1/tenants/{voice.tid}", {"no_rate": "block"}, expect=200)
    assert voice.call("j2", JAPAN) == {"call_id": "j2", "decision": "blocked",
                                       "reason": "no_rate", "sip_code": 403,
                                       "sip_reason": "Forbidden"}


def test_transfer_forwarding_and_bot_calls_in_the_report(voice, api):
    """Item 6."""
    for kind in ("user_out_transfer", "user_out_forwarding"):
        d = voice.call(kind, UK, call_type=kind)
        assert d["funding"] == "credits"
        assert voice.end(kind, 60)["charge"] == "0.02"
    d = voice.call("bot", UK, upn="payg@contoso.com", call_type="ucap_out")
    assert d["funding"] == "credits"
    voice.end("bot", 60)
    rows = {r["Call ID"]: r for r in _rows(api, voice.tid)}
    assert rows["user_out_transfer"]["Call Type"] == "user_out_transfer"
    assert rows["user_out_forwarding"]["Call Type"] == "user_out_forwarding"
    assert rows["user_out_forwarding"]["UPN"] == "payg@contoso.com"
    bot = rows["bot"]
    assert bot["Call Type"] == "ucap_out"
    assert (bot["UPN"], bot["AAD ObjectId"], bot["User Display Name"],
            bot["User Location"]) == ("", "", "", "")


JPY_DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
81,Japan,any,0,2.5,60
44,United Kingdom,any,0,4.5,60
"""


def test_connection_fee_shown_as_charged_in_jpy(api):
    """Item 13: deck fees finer than the yen."""
    r = api.client.put("/v1/rate-decks/JPY", content=JPY_DECK.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    api.set_clock("2030-03-10T12:00:00Z")
    tid = api.tenant("JP")
    for sku in ("MCOEV", "MCOPSTN_PAYG"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 1}, expect=201)
    api.post(f"/v1/tenants/{tid}/users", {"upn": "jp@contoso.com", "usage_location": "JP"},
             expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/jp@contoso.com/licenses/{sku}", expect=200)
    api.rt.settings.min_order = Decimal(1)
    api.order(tid, "1000", api.card(tid))
    switch = api.new_key("switch")
    ends = {}
    for call_id, to in (("j1", "+81312345678"), ("j2", UK)):
        api.post("/v1/calls", {"call_id": call_id, "tenant_id": tid, "call_type": "user_out",
                               "from": "+81312345679", "to": to, "upn": "jp@contoso.com"},
                 key=switch, expect=200)
        ends[call_id] = api.post(f"/v1/calls/{call_id}/end", {"duration_s": 30}, key=switch,
                                 expect=200).json()
    assert (ends["j1"]["connection_fee"], ends["j1"]["charge"]) == ("3", "3")
    assert (ends["j2"]["connection_fee"], ends["j2"]["charge"]) == ("5", "5")
    rows = {r["Call ID"]: r for r in _rows(api, tid)}
    assert (rows["j1"]["Connection Fee"], rows["j1"]["Charge"]) == ("3", "3")
    assert (rows["j2"]["Connection Fee"], rows["j2"]["Charge"]) == ("5", "5")
    assert api.credits(tid)["balance"] == "992"


def test_nce_overrun_past_the_credits_is_overage(api):
    """Item 8 on NCE: 0.10 of credits buys 300 s to the UK; a 600 s call without interim
    pays 0.10 from credits and 0.10 as overage (it was 0.10 'uncollected')."""
    v = make_voice(api)
    v.fund("0.10")
    api.patch(f"/v1/tenants/{v.tid}", {"commerce": "nce", "overage_enabled": True},
              expect=200)
    d = v.call("x1", UK)
    assert (d["funding"], d["max_duration_s"]) == ("credits", 300)
    end = v.end("x1", 600)
    assert (end["credits_charge"], end["overage_charge"], end["charge"]) == (
        "0.10", "0.10", "0.20")
    assert v.credits()["balance"] == "0.00"
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def test_nce_sms_needs_overage_on(api):
    """Item 4 for SMS: an NCE tenant without credits or overage cannot send paid SMS."""
    v = make_voice(api, "nce")

    def sms(mid: str) -> dict:
        return api.post("/v1/sms", {"message_id": mid, "tenant_id": v.tid,
                                    "upn": "nocred@contoso.com", "direction": "out",
                                    "from": US, "to": UK, "segments": 2},
                        key=v.switch, expect=200).json()
    assert sms("s1") == {"message_id": "s1", "decision": "blocked",
                         "reason": "overage_disabled"}
    api.patch(f"/v1/tenants/{v.tid}", {"overage_enabled": True}, expect=200)
    assert (sms("s2")["funding"], sms("s2")["charge"]) == ("overage", "0.10")
