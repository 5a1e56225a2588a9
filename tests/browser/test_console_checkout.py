"""Billing → Communications Credits → checkout as in the seed article, the payment methods
page and the order history, in real headless Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login, shoot
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def test_buy_with_a_new_card_and_auto_recharge(page: Page, server: str, api: Api) -> None:
    tid = api.tenant("US")
    email = add_admin(api, tid, "billing_admin")
    login(page, server, email)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Buy credits").click()
    form = page.locator("#buy-form")

    # bad input: errors next to the fields, what was typed kept, nothing saved or paid
    form.get_by_label("Amount").fill("10")
    form.get_by_label("Add a credit or debit card").check()
    form.get_by_label("Card number").fill("4242424242424242")
    form.get_by_label("Expiry month").fill("12")
    form.get_by_label("Expiry year").fill("2035")
    form.get_by_label("Recharge automatically").check()
    form.get_by_label("Recharge with").fill("abc")
    form.get_by_label("When the balance falls below").fill("20.00")
    form.get_by_role("button", name="Review order").click()
    expect(page.locator("#err-amount")).to_have_text("Amount: 10.00 is below the minimum of 50.")
    expect(page.locator("#err-ar_recharge")).to_contain_text("Recharge with: 'abc' is not")
    expect(form.get_by_label("Amount")).to_have_value("10")
    expect(form.get_by_label("When the balance falls below")).to_have_value("20.00")
    assert api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json() == []
    shoot(page, "checkout-errors")

    form.get_by_label("Amount").fill("120.00")
    form.get_by_label("Card number").fill("4242424242424242")
    form.get_by_label("Recharge with").fill("80.00")
    form.get_by_role("button", name="Review order").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    expect(page.locator("#review-amount")).to_have_text("$120.00")
    expect(page.locator("#review")).to_contain_text("Visa •••• 4242 (exp 12/2035)")
    expect(page.locator("#review-ar")).to_have_text(
        "Recharge $80.00 when the balance falls below $20.00")
    assert api.credits(tid)["balance"] == "0.00"  # nothing paid at review
    shoot(page, "checkout-review")

    hidden = {i.get_attribute("name") or "": i.get_attribute("value") or ""
              for i in page.locator("form[action='/console/buy/place'] input").all()}
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator("#receipt-amount")).to_have_text("$120.00")
    expect(page.locator("#receipt")).to_contain_text(email)
    expect(page.locator("#receipt-ar")).to_have_text("On: $80.00 when below $20.00")
    shoot(page, "checkout-receipt")
    view = api.credits(tid)
    assert view["balance"] == "120.00"
    assert view["auto_recharge"]["enabled"] is True
    assert view["auto_recharge"]["recharge_amount"] == "80.00"

    # placing the same reviewed order again (double click, resubmit) never pays twice
    again = page.request.post(f"{server}/console/buy/place", form=hidden)
    assert again.ok and "Receipt" in again.text()
    assert api.credits(tid)["balance"] == "120.00"

    page.get_by_role("link", name="Order history").click()
    rows = page.locator("#orders tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"{email} (console)")
    expect(rows.first).to_contain_text("Visa •••• 4242")


def test_enterprise_agreement_with_po_number(page: Page, server: str, api: Api) -> None:
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "global_admin"))
    page.goto(f"{server}/console/buy")
    form = page.locator("#buy-form")
    form.get_by_label("Amount").fill("2500")
    form.get_by_label("Add an Enterprise Agreement").check()
    form.get_by_label("Agreement number").fill("EA-55120")
    form.get_by_label("PO number").fill("PO-9001")
    form.get_by_role("button", name="Review order").click()
    expect(page.locator("#review-amount")).to_have_text("$2,500.00")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#receipt")).to_contain_text("PO-9001")
    expect(page.locator("#receipt")).to_contain_text("Enterprise Agreement EA-55120")
    assert api.credits(tid)["balance"] == "2500.00"
    page.goto(f"{server}/console/orders")
    expect(page.locator("#orders tbody tr").first).to_contain_text("PO-9001")


def test_payment_methods_page(page: Page, server: str, api: Api) -> None:
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Payment methods").click()

    card = page.locator("#add-card")
    card.get_by_label("Card number").fill("1234")
    card.get_by_label("Expiry month").fill("12")
    card.get_by_label("Expiry year").fill("2035")
    card.get_by_role("button", name="Add card").click()
    expect(page.locator("#err-card_number")).to_be_visible()
    expect(page.locator("#add-card").get_by_label("Expiry year")).to_have_value("2035")

    card.get_by_label("Card number").fill("4242424242424242")
    card.get_by_role("button", name="Add card").click()
    expect(page.locator("#notice")).to_have_text("Card added.")
    ea = page.locator("#add-agreement")
    ea.get_by_label("Agreement number").fill("EA-1")
    ea.get_by_role("button", name="Add agreement").click()
    methods = page.locator("#methods li")
    expect(methods).to_have_count(2)

    methods.filter(has_text="EA-1").get_by_role("button", name="Make default").click()
    expect(methods.filter(has_text="EA-1")).to_contain_text("Default")
    page.goto(f"{server}/console/buy")
    expect(page.get_by_label("Enterprise Agreement EA-1")).to_be_checked()
    shoot(page, "checkout")

    page.goto(f"{server}/console/payment-methods")
    methods.filter(has_text="Visa").get_by_role("button", name="Remove").click()
    expect(page.locator("#notice")).to_have_text("Payment method removed.")
    expect(methods).to_have_count(1)
    listed = api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()
    assert [m["type"] for m in listed] == ["enterprise_agreement"]
    shoot(page, "payment-methods")
