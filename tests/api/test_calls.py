"""Real-time charging through the Telephony API: decisions, grants, settlement, pools."""

from __future__ import annotations

import pytest

from commcredits.domain.pools import PoolKey
from commcredits.services.charging import pool_total
from tests.api.voice import (
    CHINA,
    FRANCE,
    JAPAN,
    PREMIUM,
    TOLL_FREE,
    UK,
    UK_MOBILE,
    US,
    ledger_ok,
    make_voice,
)


@pytest.mark.parametrize(("upn", "to", "call_type", "expected"), [
    ("payg@contoso.com", UK, "user_out", ("allowed", "credits")),
    ("dom@contoso.com", US, "user_out", ("allowed", "included")),
    ("dom@contoso.com", UK, "user_out", ("allowed", "credits")),
    ("nocred@contoso.com", US, "user_out", ("allowed", "included")),
    ("nocred@contoso.com", UK, "user_out", ("blocked", "no_credits_license")),
    ("bare@contoso.com", US, "user_out", ("blocked", "no_calling_plan")),
    ("conf@contoso.com", US, "user_out", ("blocked", "no_calling_plan")),
    ("ghost@contoso.com", US, "user_out", ("blocked", "unknown_user")),
    ("payg@contoso.com", PREMIUM, "user_out", ("blocked", "destination_blocked")),
    ("payg@contoso.com", "+999", "user_out", ("blocked", "invalid_number")),
    ("payg@contoso.com", JAPAN, "user_out", ("allowed", "free")),
    ("conf@contoso.com", FRANCE, "conf_out", ("allowed", "included")),
    ("conf@contoso.com", CHINA, "conf_out", ("allowed", "credits")),
    ("bare@contoso.com", US, "conf_out", ("blocked", "no_conferencing_license")),
    ("bare@contoso.com", US, "user_in", ("allowed", "free")),
])
def test_decision_table(voice, upn, to, call_type, expected):
    extra = {"organizer_upn": upn} if call_type == "conf_out" else {}
    d = voice.call("c1", to, upn=None if call_type == "conf_out" else upn,
                   call_type=call_type, **extra)
    decision, second = expected
    assert d["decision"] == decision, d
    if decision == "allowed":
        assert d["funding"] == second
        if second in {"credits", "included"}:
            assert d["max_duration_s"] > 0
        else:
            assert "max_duration_s" not in d
    else:
        assert d["reason"] == second and "funding" not in d


def test_call_is_timed_reserved_and_settled_exactly(voice):
    d = voice.call("c1", UK)  # 0.02/min, 60 s increments
    assert d["max_duration_s"] == 300  # one slice
    c = voice.credits()
    assert (c["balance"], c["reserved"], c["available"]) == ("50.00", "0.10", "49.90")
    # each answer says when to ask again (the grant less a 30 s lead) and that more may come
    assert voice.interim("c1", 100) == {"continue": True, "max_duration_s": 400,
                                        "final": False, "validity_s": 270}
    assert voice.interim("c1", 250) == {"continue": True, "max_duration_s": 550,
                                        "final": False, "validity_s": 270}
    assert voice.credits()["reserved"] == "0.20"  # 550 s → 10 minutes
    end = voice.end("c1", 61)
    assert end == {**end, "call_id": "c1", "charge": "0.04", "connection_fee": "0.00",
                   "currency": "USD", "included_minutes": 0, "funding": "credits"}
    c = voice.credits()
    assert (c["balance"], c["reserved"], c["available"]) == ("49.96", "0.00", "49.96")
    assert voice.end("c1", 900) == end  # idempotent: nothing charged twice
    assert voice.credits()["balance"] == "49.96"
    assert voice.txn_kinds() == ["order", "usage"]
    ledger_ok(voice.api)


def test_connection_fee_and_increments(voice):
    voice.call("m1", UK_MOBILE)  # 0.10/min + 0.05 fee, 1 s increments
    end = voice.end("m1", 90)
    assert (end["charge"], end["connection_fee"]) == ("0.20", "0.05")
    voice.call("f1", FRANCE)  # 0.03/min + 0.01 fee, 6 s increments: 61 s bills 66 s
    assert voice.end("f1", 61)["charge"] == "0.04"  # 0.01 + 0.033 = 0.043 → 0.04
    voice.call("z1", UK_MOBILE)
    assert voice.end("z1", 0)["charge"] == "0.00"  # unanswered: no fee
    assert voice.credits()["balance"] == "49.76"


def test_a_small_balance_limits_the_call(voice, api):
    # spend 49.75 of the 50.00 first
    voice.call("big", UK_MOBILE)
    voice.end("big", 29820)  # 0.05 + 497 min * 0.10 = 49.75
    assert voice.credits()["balance"] == "0.25"
    d = voice.call("c2", UK_MOBILE)
    # 0.05 + 122 s * 0.10/60 = 0.2533 → 0.25 fits; 123 s = 0.255 → 0.26 does not
    assert d["max_duration_s"] == 122
    assert d["final"] is True and "validity_s" not in d  # nothing more will come: no polling
    assert voice.interim("c2", 100) == {"continue": True, "max_duration_s": 122, "final": True}
    assert voice.interim("c2", 122) == {"continue": False, "max_duration_s": 122, "final": True}
    assert voice.end("c2", 122)["charge"] == "0.25"
    c = voice.credits()
    assert (c["balance"], c["reserved"]) == ("0.00", "0.00")
    blocked = voice.call("c3", UK)
    assert blocked == {"call_id": "c3", "decision": "blocked", "reason": "insufficient_credits",
                       "sip_code": 402, "sip_reason": "Payment Required"}
    assert voice.notices().count("balance_zero") == 1
    ledger_ok(api)


def test_a_call_past_its_grant_never_overdraws(voice):
    voice.call("big", UK_MOBILE)
    voice.end("big", 29820)
    voice.call("over", UK_MOBILE)  # granted 122 s
    end = voice.end("over", 3600)  # the switch did not cut it
    assert end["charge"] == "0.25"  # only what was there
    assert voice.credits()["balance"] == "0.00"
    ledger_ok(voice.api)


def test_pool_then_credits_split_and_alerts(voice, api):
    api.rt.settings.grant_slice_s = 40000
    # 10 purchased Audio Conferencing licences: a 600-minute dial-out pool for the tenant
    d = voice.call("k1", US, upn=None, call_type="conf_out", organizer_upn="conf@contoso.com")
    assert d["funding"] == "included" and d["max_duration_s"] == 40000
    end = voice.end("k1", 36100)  # 600 pooled minutes, then 100 s on credits (2 minutes)
    assert (end["included_minutes"], end["funding"], end["charge"]) == (600, "credits", "0.02")
    with api.rt.db.uow() as uow:
        row = uow.charging.pool(voice.tid, "2030-03", "conferencing")
    assert (row.used_minutes, row.reserved_s) == (600, 0)
    assert sorted(k for k in voice.notices() if k.startswith("pool_")) == ["pool_100", "pool_80"]
    d = voice.call("k2", US, upn=None, call_type="conf_out", organizer_upn="conf@contoso.com")
    assert d["funding"] == "credits"  # the pool is used up for this month
    voice.end("k2", 30)
    api.set_clock("2030-04-01T00:00:00Z")  # a new month: the pool is full again
    d = voice.call("k3", US, upn=None, call_type="conf_out", organizer_upn="conf@contoso.com")
    assert d["funding"] == "included"


def test_domestic_pool_is_shared_by_plan_and_country(voice, api):
    d = voice.call("d1", US, upn="dom@contoso.com")
    assert d["funding"] == "included"
    end = voice.end("d1", 125)
    assert (end["included_minutes"], end["charge"], end["funding"]) == (3, "0.00", "included")
    assert voice.credits()["balance"] == "50.00"
    # nocred@ has the same plan in the same country: it draws from the same pool
    voice.call("d2", US, upn="nocred@contoso.com")
    voice.end("d2", 60)
    with api.rt.db.uow() as uow:
        row = uow.charging.pool(voice.tid, "2030-03", "domestic:US:MCOPSTN1")
        total = pool_total(uow, voice.tid, PoolKey("domestic", "US", "MCOPSTN1"))
    assert (row.used_minutes, row.reserved_s, total) == (4, 0, 6000)


def test_toll_free_inbound_is_paid_by_the_tenant(voice, api):
    api.post(f"/v1/tenants/{voice.tid}/numbers", {"number": TOLL_FREE, "type": "toll_free"},
             expect=201)
    d = voice.call("t1", TOLL_FREE, upn=None, call_type="conf_in", frm=UK)
    assert d["funding"] == "credits" and d["max_duration_s"] == 300
    assert voice.end("t1", 120)["charge"] == "0.16"  # UK origin: 0.08/min
    # an ordinary inbound call costs nothing
    d = voice.call("t2", "+14255550199", upn="dom@contoso.com", call_type="user_in", frm=UK)
    assert d == {"call_id": "t2", "decision": "allowed", "funding": "free", "final": False,
                 "tenant_id": voice.tid, "auth_ttl_s": 120}
    voice.end("t2", 600)
    assert voice.credits()["balance"] == "49.84"


def test_toll_free_numbers_stop_at_zero(api):
    v = make_voice(api)
    api.post(f"/v1/tenants/{v.tid}/numbers", {"number": TOLL_FREE, "type": "toll_free"})
    d = v.call("t1", TOLL_FREE, upn=None, call_type="ucap_in", frm=UK)
    assert d == {"call_id": "t1", "decision": "blocked", "reason": "insufficient_credits",
                 "sip_code": 402, "sip_reason": "Payment Required"}


def test_premium_destinations_when_allowed(voice, api):
    api.patch(f"/v1/tenants/{voice.tid}", {"allow_premium": True}, expect=200)
    assert voice.call("p1", PREMIUM)["funding"] == "credits"
    api.patch(f"/v1/tenants/{voice.tid}", {"allow_premium": False,
                                           "blocked_prefixes": ["+44"]}, expect=200)
    assert voice.call("p2", PREMIUM)["reason"] == "destination_blocked"
    assert voice.call("p3", UK)["reason"] == "destination_blocked"


def test_unpriceable_call_is_free_and_marked(voice, api):
    voice.call("j1", JAPAN)
    end = voice.end("j1", 300)
    assert (end["charge"], end["funding"]) == ("0.00", "free")
    with api.rt.db.uow() as uow:
        row = uow.conn.exec_driver_sql(
            "SELECT capability, charge FROM usage_records WHERE ref = 'j1'").one()
    assert row[0] == "FREECALL"


def test_nce_tenant_pays_overage(api):
    v = make_voice(api, "nce")
    assert v.call("o0", UK) == {"call_id": "o0", "decision": "blocked",
                                "reason": "overage_disabled", "sip_code": 403,
                                "sip_reason": "Forbidden"}  # off by default
    t = api.patch(f"/v1/tenants/{v.tid}", {"overage_enabled": True}, expect=200).json()
    assert t["overage_enabled"] is True
    d = v.call("o1", UK)
    assert d == {"call_id": "o1", "decision": "allowed", "funding": "overage", "final": False,
                 "tenant_id": v.tid, "auth_ttl_s": 120}
    end = v.end("o1", 120)
    assert (end["charge"], end["funding"]) == ("0.04", "overage")
    assert v.credits()["balance"] == "0.00" and v.txn_kinds() == []
    # without credits nothing blocks an nce tenant's paid call, even without MCOPSTNPP
    assert v.call("o2", UK, upn="nocred@contoso.com")["funding"] == "overage"


def test_tenant_moved_to_nce_spends_credits_first(voice, api):
    api.patch(f"/v1/tenants/{voice.tid}", {"commerce": "nce"}, expect=200)
    d = voice.call("n1", UK)
    assert d["funding"] == "credits" and d["max_duration_s"] == 300
    voice.end("n1", 60)
    assert voice.credits()["balance"] == "49.98"


def test_silent_call_never_answered_costs_nothing(voice, api):
    voice.call("s1", UK)
    assert voice.credits()["reserved"] == "0.10"
    api.set_clock("2030-03-10T12:01:59Z")  # the authorization waits 120 s for an answer
    assert voice.credits()["reserved"] == "0.10"
    ran = api.set_clock("2030-03-10T12:02:00Z")
    assert ran["jobs"]["calls"] == 1
    c = voice.credits()
    assert (c["balance"], c["reserved"]) == ("50.00", "0.00")
    assert voice.txn_kinds() == ["order"]


def test_repeated_authorization_returns_the_same_decision(voice):
    first = voice.call("r1", UK)
    assert voice.call("r1", UK) == first
    assert voice.credits()["reserved"] == "0.10"


def test_unknown_call_and_roles(voice, api):
    api.post("/v1/calls/nope/end", {"duration_s": 5}, key=voice.switch, expect=404)
    admin = api.new_key("global_admin", voice.tid)
    api.post("/v1/calls", {"call_id": "x", "tenant_id": voice.tid, "call_type": "user_out",
                           "from": US, "to": UK, "upn": "payg@contoso.com"}, key=admin,
             expect=403)
    api.post("/v1/calls", {"call_id": "x", "tenant_id": voice.tid, "call_type": "teleport",
                           "from": US, "to": UK}, key=voice.switch, expect=422)
    api.post("/v1/calls", {"call_id": "x", "tenant_id": "tnt_nope", "call_type": "user_out",
                           "from": US, "to": UK}, key=voice.switch, expect=404)


def test_sms(voice, api):
    def sms(mid, to=UK, direction="out", segments=3, upn="payg@contoso.com"):
        return api.post("/v1/sms", {"message_id": mid, "tenant_id": voice.tid, "upn": upn,
                                    "from": US, "to": to, "direction": direction,
                                    "segments": segments}, key=voice.switch, expect=200).json()
    assert sms("m1") == {"message_id": "m1", "decision": "allowed", "charge": "0.15",
                         "currency": "USD", "funding": "credits"}
    assert sms("m1")["charge"] == "0.15"  # idempotent
    assert sms("m2", direction="in", to=US)["charge"] == "0.00"
    assert sms("m3", upn="nocred@contoso.com")["reason"] == "no_credits_license"
    assert voice.credits()["balance"] == "49.85"
    ledger_ok(api)


def test_per_user_daily_cap(voice, api):
    r = api.patch(f"/v1/tenants/{voice.tid}", {"user_daily_cap": "0.10"}, expect=200)
    assert r.json()["user_daily_cap"] == "0.10"
    d = voice.call("a1", UK)  # 0.02/min: 0.10 buys 5 minutes
    assert d["max_duration_s"] == 300
    assert voice.interim("a1", 280) == {"continue": True, "max_duration_s": 300, "final": True}
    voice.end("a1", 300)
    assert voice.call("a2", UK) == {"call_id": "a2", "decision": "blocked",
                                    "reason": "daily_cap_reached", "sip_code": 402,
                                    "sip_reason": "Payment Required"}
    # other users have their own cap; included minutes are not capped
    assert voice.call("b1", UK, upn="dom@contoso.com")["funding"] == "credits"
    assert voice.call("b2", US, upn="payg@contoso.com")["decision"] == "blocked"
    assert voice.call("b3", US, upn="dom@contoso.com")["funding"] == "included"
    api.set_clock("2030-03-11T00:00:01Z")  # a new UTC day
    assert voice.call("a3", UK)["funding"] == "credits"
    api.patch(f"/v1/tenants/{voice.tid}", {"user_daily_cap": None}, expect=200)
    assert api.get(f"/v1/tenants/{voice.tid}").json()["user_daily_cap"] is None
    api.patch(f"/v1/tenants/{voice.tid}", {"user_daily_cap": "-1"}, expect=422)


def test_business_metrics(voice, api):
    def value(name, **labels):
        from prometheus_client import REGISTRY
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (value("commcredits_call_decisions_total", decision="allowed", detail="credits"),
              value("commcredits_call_decisions_total", decision="blocked",
                    detail="no_calling_plan"),
              value("commcredits_charged_minor_units_total", currency="USD", funding="credits"))
    voice.call("m1", UK)
    voice.end("m1", 61)  # 0.04
    voice.call("m2", US, upn="bare@contoso.com")
    after = (value("commcredits_call_decisions_total", decision="allowed", detail="credits"),
             value("commcredits_call_decisions_total", decision="blocked",
                   detail="no_calling_plan"),
             value("commcredits_charged_minor_units_total", currency="USD", funding="credits"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 4]
    assert "commcredits_call_decisions_total" in api.client.get("/metrics").text
