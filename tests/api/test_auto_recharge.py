"""Auto-recharge settings: stored, validated, shown with the credits."""

from __future__ import annotations

import pytest


def put(api, tid, body, **kw):
    return api.put(f"/v1/tenants/{tid}/credits/auto-recharge", body, **kw)


def test_settings_round_trip(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = put(api, tid, {"enabled": True, "recharge_amount": "100", "trigger_amount": "20.5",
                       "payment_method_id": pm}, expect=200)
    expected = {"enabled": True, "recharge_amount": "100.00", "trigger_amount": "20.50",
                "payment_method_id": pm, "status": "active"}
    assert r.json() == expected
    assert api.credits(tid)["auto_recharge"] == expected
    r = put(api, tid, {"enabled": False}, expect=200)
    assert r.json()["enabled"] is False and r.json()["status"] == "off"
    # turning it on again keeps the amounts
    r = put(api, tid, {"enabled": True}, expect=200)
    assert r.json() == expected


def test_order_can_set_auto_recharge(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.order(tid, "60", pm, auto_recharge={"enabled": True, "recharge_amount": "50",
                                               "trigger_amount": "10"})
    assert r.status_code == 201, r.text
    assert api.credits(tid)["auto_recharge"] == {
        "enabled": True, "recharge_amount": "50.00", "trigger_amount": "10.00",
        "payment_method_id": pm, "status": "active"}


def test_invalid_auto_recharge_on_an_order_refuses_the_whole_order(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.order(tid, "60", pm, auto_recharge={"enabled": True, "recharge_amount": "5",
                                               "trigger_amount": "10"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "amount_below_minimum"
    assert api.credits(tid)["balance"] == "0.00"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"enabled": True, "recharge_amount": "49", "trigger_amount": "10"}, 422,
     "amount_below_minimum"),
    ({"enabled": True, "recharge_amount": "50", "trigger_amount": "-1"}, 422,
     "validation_error"),
    ({"enabled": True, "recharge_amount": "50"}, 422, "validation_error"),
    ({"enabled": True, "recharge_amount": 50.0, "trigger_amount": "1"}, 422,
     "validation_error"),
    ({"recharge_amount": "50", "trigger_amount": "1"}, 422, "validation_error"),
])
def test_invalid_settings(api, body, status, code):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = put(api, tid, {**body, "payment_method_id": pm}, expect=status)
    assert r.json()["error"]["code"] == code
    assert api.credits(tid)["auto_recharge"]["enabled"] is False


def test_payment_method_is_required_and_must_be_the_tenants(api):
    tid, other = api.tenant("US"), api.tenant("US")
    r = put(api, tid, {"enabled": True, "recharge_amount": "50", "trigger_amount": "5"},
            expect=422)
    assert r.json()["error"]["code"] == "payment_method_required"
    foreign = api.card(other)
    put(api, tid, {"enabled": True, "recharge_amount": "50", "trigger_amount": "5",
                   "payment_method_id": foreign}, expect=404)
