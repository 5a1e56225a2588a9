"""Auto-recharge runs: once per fall below the trigger, retries, suspension, daily cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commcredits.services.ledger import verify
from tests.api.voice import FRANCE, make_voice


@pytest.fixture
def voice(api):
    v = make_voice(api)
    v.fund("55.00")
    api.rt.settings.grant_slice_s = 20000
    return v


def auto(api, voice, pm=None, amount="50.00", trigger="50.00"):
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": True, "recharge_amount": amount, "trigger_amount": trigger,
             "payment_method_id": pm or voice.card}, expect=200)


def spend(voice, call_id, seconds=12000):
    """A call to France: 0.01 fee + 0.03/min; 12000 s = 200 min = 6.01."""
    voice.call(call_id, FRANCE)
    return voice.end(call_id, seconds)


def test_falling_below_the_trigger_recharges_once(api, voice):
    auto(api, voice)
    assert spend(voice, "c1")["charge"] == "6.01"
    c = voice.credits()
    assert c["balance"] == "98.99"  # 55.00 - 6.01 + 50.00
    assert [lot["source"] for lot in c["lots"]] == ["order", "auto_recharge"]
    assert voice.txn_kinds() == ["order", "usage", "auto_recharge"]
    assert voice.notices().count("recharge_succeeded") == 1
    # further spending above the trigger starts nothing
    spend(voice, "c2")
    assert voice.credits()["balance"] == "92.98"
    assert len(voice.credits()["lots"]) == 2
    # the next fall below the trigger is a new crossing: one more recharge
    for i in range(8):  # 92.98 - 8 * 6.01 = 44.90: below the trigger once
        spend(voice, f"d{i}")
    c = voice.credits()
    assert [lot["source"] for lot in c["lots"]].count("auto_recharge") == 2
    assert voice.notices().count("recharge_succeeded") == 2
    with api.rt.db.uow() as uow:
        assert verify(uow)[1] == []


def _card_expiring(api, tid, month="03", year=2030):
    body = {"type": "card", "card_number": "4242424242424242", "exp_month": int(month),
            "exp_year": year}
    return api.post(f"/v1/tenants/{tid}/payment-methods", body, expect=201).json()["id"]


def test_failed_recharge_is_retried_then_suspended(api, voice):
    # the card could pay when it was chosen (10 March) and expires with March
    expiring = _card_expiring(api, voice.tid)
    auto(api, voice, expiring)
    api.set_clock("2030-04-01T12:00:00Z")
    spend(voice, "c1")
    c = voice.credits()
    assert c["balance"] == "48.99" and len(c["lots"]) == 1
    assert c["auto_recharge"]["status"] == "active"
    assert voice.notices().count("recharge_failed") == 1
    api.set_clock("2030-04-01T12:59:00Z")  # not yet an hour
    assert voice.notices().count("recharge_failed") == 1
    api.set_clock("2030-04-01T13:00:01Z")  # +1 h
    assert voice.notices().count("recharge_failed") == 2
    api.set_clock("2030-04-01T19:00:02Z")  # +6 h
    assert voice.notices().count("recharge_failed") == 3
    api.set_clock("2030-04-02T19:00:03Z")  # +24 h: the fourth failure suspends
    c = voice.credits()
    assert c["auto_recharge"]["status"] == "suspended" and c["auto_recharge"]["enabled"]
    assert voice.notices().count("recharge_suspended") == 1
    assert c["balance"] == "48.99" and len(c["lots"]) == 1
    api.set_clock("2030-04-06T00:00:00Z")  # nothing more is tried
    assert voice.notices().count("recharge_failed") == 3
    # a new card and turning it on again tops the balance up straight away
    auto(api, voice, voice.card)
    c = voice.credits()
    assert c["auto_recharge"]["status"] == "active" and c["balance"] == "98.99"


def test_card_that_expired_since_it_was_chosen_fails_with_card_expired(api, voice):
    auto(api, voice, _card_expiring(api, voice.tid))
    api.set_clock("2030-04-01T00:00:00Z")
    spend(voice, "c1")
    assert voice.notices().count("recharge_failed") == 1
    with api.rt.db.uow() as uow:
        rows = uow.conn.exec_driver_sql("SELECT status, last_error, attempts FROM recharges").all()
    assert [tuple(r) for r in rows] == [("failed", "card_expired", 1)]
    assert voice.credits()["balance"] == "48.99"


@pytest.mark.parametrize(("number", "exp_year", "code"), [
    ("4000000000000002", 2035, "payment_declined"),
    ("4000000000000069", 2035, "card_expired"),
    ("4242424242424242", 2020, "card_expired"),  # expired in 2020
    ("4242424242424242", 2029, "card_expired"),
])
def test_a_card_that_cannot_pay_is_refused_for_auto_recharge(api, voice, number, exp_year,
                                                            code):
    """Issue 9 item 10: refused when chosen, with the reason, and nothing changes."""
    if exp_year < 2030:  # expired since it was saved (issue 19: saving it now is refused)
        from commcredits.services import credits
        from commcredits.services.ports import CardToken
        with api.rt.db.uow() as uow:
            pm = credits.add_token(uow, "test", voice.tid, CardToken(
                f"tok_test_ok_{exp_year}", "visa", number[-4:], 12, exp_year))["id"]
            uow.commit()
    else:
        pm = api.card(voice.tid, number, exp_year=exp_year)
    body = {"enabled": True, "recharge_amount": "50.00", "trigger_amount": "10.00",
            "payment_method_id": pm}
    r = api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge", body, expect=402)
    assert r.json()["error"]["code"] == code
    assert voice.credits()["auto_recharge"]["enabled"] is False
    # nor through an order that also turns auto-recharge on
    r = api.order(voice.tid, "50.00", voice.card,
                  auto_recharge={"enabled": True, "recharge_amount": "50.00",
                                 "trigger_amount": "10.00", "payment_method_id": pm})
    assert r.status_code == 402 and r.json()["error"]["code"] == code
    assert voice.credits()["balance"] == "55.00"
    # turning it off never needs a card that can pay
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": False, "payment_method_id": pm}, expect=200)


def test_daily_cap(api, voice):
    api.rt.settings.max_recharges_per_day = 2
    auto(api, voice, amount="50.00", trigger="50.00")
    for i in range(3):  # each call costs 60.01: every one falls below the trigger
        voice.call(f"big{i}", FRANCE)
        voice.end(f"big{i}", 120000)  # 2000 min = 60.01
    c = voice.credits()
    assert [lot["source"] for lot in c["lots"]].count("auto_recharge") == 2
    assert voice.notices().count("recharge_capped") == 1
    # the next day the cap resets
    api.set_clock("2030-03-11T00:00:01Z")
    voice.fund("60.00")  # back above the trigger (re-arms)
    voice.call("next", FRANCE)
    voice.end("next", 120000)
    assert [lot["source"] for lot in voice.credits()["lots"]].count("auto_recharge") == 3


def test_balance_zero_is_sent_once_per_time(api):
    v = make_voice(api)
    v.api.rt.settings.min_order = Decimal("0.01")
    v.fund("0.30")
    v.call("a", FRANCE)
    v.end("a", 60000)  # far more than there is: charged the 0.30 that was there
    assert v.credits()["balance"] == "0.00"
    assert v.notices().count("balance_zero") == 1
    v.fund("0.30")
    v.call("b", FRANCE)
    v.end("b", 60000)
    assert v.notices().count("balance_zero") == 2


def test_money_notices_reach_billing_contacts_and_billing_admins_once(api, voice):
    """Issue 9 item 5: billing contacts and console admins with the global or billing admin
    role, one e-mail per address."""
    for email, role in (("boss@contoso.com", "global_admin"),
                        ("BILLING@contoso.com", "billing_admin"),  # also a billing contact
                        ("money@contoso.com", "billing_admin"),
                        ("people@contoso.com", "user_admin"),
                        ("reader@contoso.com", "reports_reader")):
        api.post(f"/v1/tenants/{voice.tid}/admins",
                 {"email": email, "password": "a-long-password", "role": role}, expect=201)
    auto(api, voice)
    spend(voice, "c1")  # below the trigger: a recharge
    notes = api.get(f"/v1/tenants/{voice.tid}/notifications").json()
    to = sorted(n["to"] for n in notes if n["kind"] == "recharge_succeeded")
    assert to == ["billing@contoso.com", "boss@contoso.com", "money@contoso.com"]
