"""Credits: payment methods, orders, lots, the ledger; every refusal changes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

T0 = "2030-01-31T10:00:00+00:00"


def assert_untouched(api, tid, balance="0", lots=0):
    c = api.credits(tid)
    assert Decimal(c["balance"]) == Decimal(balance) and len(c["lots"]) == lots
    assert len(api.get(f"/v1/tenants/{tid}/credits/transactions").json()) == lots


def test_order_makes_a_lot_expiring_in_12_months(api):
    api.set_clock(T0)
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.order(tid, "120.50", pm)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "completed" and order["amount"] == "120.50"
    c = api.credits(tid)
    assert (c["currency"], c["balance"], c["reserved"], c["available"]) == (
        "USD", "120.50", "0.00", "120.50")
    [lot] = c["lots"]
    assert lot["id"] == order["lot_id"] and lot["source"] == "order"
    assert lot["amount"] == lot["remaining"] == "120.50"
    assert datetime.fromisoformat(lot["purchased_at"]) == datetime.fromisoformat(T0)
    assert datetime.fromisoformat(lot["expires_at"]) == datetime.fromisoformat(
        "2031-01-31T10:00:00+00:00")
    [txn] = api.get(f"/v1/tenants/{tid}/credits/transactions", expect=200).json()
    assert (txn["kind"], txn["amount"], txn["balance_after"], txn["lot_id"]) == (
        "order", "120.50", "120.50", lot["id"])


def test_lots_accumulate_in_purchase_order(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    for amount in ("50.00", "75.25", "100"):
        assert api.order(tid, amount, pm).status_code == 201
    c = api.credits(tid)
    assert c["balance"] == "225.25"
    assert [lot["amount"] for lot in c["lots"]] == ["50.00", "75.25", "100.00"]
    txns = api.get(f"/v1/tenants/{tid}/credits/transactions").json()
    assert [t["balance_after"] for t in txns] == ["50.00", "125.25", "225.25"]


@pytest.mark.parametrize(("amount", "code"), [
    ("49.99", "amount_below_minimum"), ("0", "amount_below_minimum"),
    ("-100", "amount_below_minimum"), ("12.345", "validation_error"),
    ("abc", "validation_error"), ("NaN", "validation_error"),
])
def test_bad_amounts(api, amount, code):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.order(tid, amount, pm)
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    assert_untouched(api, tid)


def test_float_money_is_refused(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    r = api.post(f"/v1/tenants/{tid}/credits/orders", {"amount": 60.5, "payment_method_id": pm})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert_untouched(api, tid)


def test_minimum_is_configurable(api):
    api.rt.settings.min_order = api.rt.settings.min_order.__class__("100")
    tid = api.tenant("US")
    pm = api.card(tid)
    assert api.order(tid, "99.00", pm).json()["error"]["code"] == "amount_below_minimum"
    assert api.order(tid, "100.00", pm).status_code == 201


@pytest.mark.parametrize(("card", "code"), [("4000000000000002", "payment_declined"),
                                            ("4000000000000069", "card_expired")])
def test_refused_payments_leave_nothing(api, card, code):
    tid = api.tenant("US")
    good = api.card(tid)
    api.order(tid, "50.00", good)
    bad = api.card(tid, card)
    r = api.order(tid, "80.00", bad)
    assert r.status_code == 402 and r.json()["error"]["code"] == code
    assert_untouched(api, tid, balance="50.00", lots=1)
    assert len(api.get(f"/v1/tenants/{tid}/credits/orders").json()) == 1


def test_card_past_its_date_is_expired(api):
    api.set_clock("2031-02-01T00:00:00Z")
    tid = api.tenant("US")
    pm = api.card(tid, exp_year=2031)  # 12/2031 is still valid
    assert api.order(tid, "50.00", pm).status_code == 201
    api.set_clock("2032-01-01T00:00:00Z")
    r = api.order(tid, "50.00", pm)
    assert r.status_code == 402 and r.json()["error"]["code"] == "card_expired"


@pytest.mark.parametrize(("country", "commerce", "code"), [
    ("US", "nce", "not_available_for_commerce_model"),
    ("RU", "legacy", "not_available_in_country"),
    ("KR", "legacy", "not_available_in_country"),
    ("TW", "legacy", "not_available_in_country"),
])
def test_where_credits_cannot_be_bought(api, country, commerce, code):
    tid = api.tenant(country, commerce)
    pm = api.post(f"/v1/tenants/{tid}/payment-methods",
                  {"type": "enterprise_agreement", "agreement_number": "EA-9"},
                  expect=201).json()["id"]
    r = api.order(tid, "500", pm)
    assert r.status_code == 409 and r.json()["error"]["code"] == code
    r = api.put(f"/v1/tenants/{tid}/credits/auto-recharge",
                {"enabled": True, "recharge_amount": "50", "trigger_amount": "5",
                 "payment_method_id": pm})
    assert r.status_code == 409 and r.json()["error"]["code"] == code
    assert_untouched(api, tid)


def test_enterprise_agreement_with_po_number(api):
    tid = api.tenant("GB")
    ea1 = api.post(f"/v1/tenants/{tid}/payment-methods",
                   {"type": "enterprise_agreement", "agreement_number": "EA-1001"}, expect=201)
    ea2 = api.post(f"/v1/tenants/{tid}/payment-methods",
                   {"type": "enterprise_agreement", "agreement_number": "EA-2002"}, expect=201)
    assert ea1.json()["agreement_number"] == "EA-1001"
    r = api.order(tid, "250.00", ea2.json()["id"], po_number="PO-77")
    assert r.status_code == 201 and r.json()["po_number"] == "PO-77"
    assert api.credits(tid)["balance"] == "250.00" and api.credits(tid)["currency"] == "GBP"
    card = api.card(tid)
    assert api.order(tid, "50", card, po_number="PO-1").status_code == 422


def test_payment_method_validation(api):
    tid = api.tenant("US")
    base = f"/v1/tenants/{tid}/payment-methods"
    for body in ({"type": "card", "card_number": "4242424242424241", "exp_month": 1,
                  "exp_year": 2035},
                 {"type": "card", "card_number": "4242424242424242", "exp_month": 13,
                  "exp_year": 2035},
                 {"type": "card", "exp_month": 1, "exp_year": 2035},
                 {"type": "enterprise_agreement"},
                 {"type": "bitcoin"}):
        r = api.post(base, body, expect=422)
        assert r.json()["error"]["code"] == "validation_error"
        assert "4242424242424241" not in r.text and "4242424242424242" not in r.text
    other = api.tenant("US")
    foreign = api.card(other)
    r = api.order(tid, "50.00", foreign)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_no_card_number_is_stored(api):
    tid = api.tenant("US")
    api.card(tid, "4242424242424242")
    api.card(tid, "4000000000000002")
    pms = api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()
    assert {pm["last4"] for pm in pms} == {"4242", "0002"}
    assert all("card_number" not in pm and "token" not in pm for pm in pms)
    with api.rt.db.uow() as uow:
        dump = []
        for table in sa.inspect(uow.conn).get_table_names():
            dump += [repr(tuple(row)) for row in uow.conn.exec_driver_sql(f"SELECT * FROM {table}")]
    text = "\n".join(dump)
    assert "4242424242424242" not in text and "4000000000000002" not in text
    assert "4242" in text  # the last four digits are kept


def test_roles_for_orders(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    billing = api.new_key("billing_admin", tid)
    users = api.new_key("user_admin", tid)
    assert api.post(f"/v1/tenants/{tid}/credits/orders",
                    {"amount": "50", "payment_method_id": pm}, key=billing).status_code == 201
    r = api.post(f"/v1/tenants/{tid}/credits/orders", {"amount": "50", "payment_method_id": pm},
                 key=users, expect=403)
    assert r.json()["error"]["code"] == "forbidden"
    assert api.credits(tid)["balance"] == "50.00"


def test_zero_decimal_currency(api):
    tid = api.tenant("JP")
    pm = api.card(tid)
    assert api.order(tid, "5000", pm).status_code == 201
    assert api.credits(tid)["balance"] == "5000"
    assert api.order(tid, "5000.5", pm).json()["error"]["code"] == "validation_error"
