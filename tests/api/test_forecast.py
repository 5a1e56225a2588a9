"""Spend over time, runout forecast and the recommended auto-recharge."""

from __future__ import annotations

from decimal import Decimal

from tests.api.voice import UK, make_voice


def test_forecast_from_recent_spend(api):
    v = make_voice(api)  # clock: 2030-03-10 12:00
    v.fund("50.00")
    for day, minutes in ((8, 10), (9, 20), (10, 30)):
        api.set_clock(f"2030-03-{day + 10:02d}T10:00:00Z")
        v.call(f"c{day}", UK)
        v.end(f"c{day}", minutes * 60)  # 0.02/min
    api.rt.settings.min_order = Decimal("50")  # fund() lowered it
    f = api.get(f"/v1/tenants/{v.tid}/credits/forecast?days=7", expect=200).json()
    assert f["spent"] == "1.20" and f["balance"] == "48.80"
    assert f["daily"][0]["date"] == "2030-03-14"
    assert [d["amount"] for d in f["daily"]][-3:] == ["0.20", "0.40", "0.60"]
    assert f["burn_per_day"] == "0.17"  # 1.20 / 7
    assert f["runout_days"] == 284  # 48.80 / (1.20 / 7) = 284.67
    assert f["runout_date"] == "2030-12-29"
    # a week of spend (1.20) rounded up; a month (5.14) is below the minimum order of 50
    assert f["recommended"] == {"trigger_amount": "2.00", "recharge_amount": "50.00"}
    api.rt.settings.min_order = Decimal("1")
    f = api.get(f"/v1/tenants/{v.tid}/credits/forecast?days=7", expect=200).json()
    assert f["recommended"]["recharge_amount"] == "6.00"
    api.get(f"/v1/tenants/{v.tid}/credits/forecast?days=0", expect=422)


def test_forecast_without_spend(api):
    v = make_voice(api)
    v.fund("50.00")
    f = api.get(f"/v1/tenants/{v.tid}/credits/forecast", expect=200).json()
    assert (f["spent"], f["runout_days"], f["runout_date"]) == ("0.00", None, None)
    assert len(f["daily"]) == 28
    reader = api.new_key("reports_reader", v.tid)
    api.get(f"/v1/tenants/{v.tid}/credits/forecast", key=reader, expect=200)


def test_forecast_of_a_large_balance_and_a_tiny_burn(api):
    """Issue 9 item 9: 10,100 available and one 0.08 call in 28 days answered 500
    (OverflowError: date value out of range)."""
    v = make_voice(api)
    v.fund("10100.00")
    v.call("tiny", UK)
    v.end("tiny", 240)  # 4 minutes at 0.02: 0.08
    f = api.get(f"/v1/tenants/{v.tid}/credits/forecast", expect=200).json()
    assert f["spent"] == "0.08"
    assert f["runout_days"] == 3_534_972  # 10,099.92 / (0.08 / 28) = 10,099.92 * 350
    assert f["runout_date"] is None  # past any calendar worth printing
