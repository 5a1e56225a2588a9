"""Issue 19 point 8 in real headless Chromium: console errors a person can act on (the
field's label, every error of a form at once, a bad expiry year flagged, an amount above
the maximum called so) and a notice shown once, not again on reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _funded(api: Api) -> str:
    tid = api.tenant("US")
    card = api.card(tid)
    assert api.order(tid, "100.00", card).status_code == 201
    return tid


def test_auto_recharge_form_names_its_fields_and_shows_every_error(
        page: Page, server: str, api: Api) -> None:
    tid = _funded(api)
    login(page, server, add_admin(api, tid, "billing_admin"))
    box = page.locator("#auto-recharge")
    box.get_by_text("Change").click()
    box.get_by_label("Auto-recharge on").check()
    box.get_by_label("Recharge with").fill("ten")
    box.get_by_label("When balance falls below").fill("1000000000000")
    box.get_by_role("button", name="Save").click()
    expect(page.locator("#err-recharge_amount")).to_have_text(
        "Recharge with: 'ten' is not a decimal number like \"50.00\".")
    expect(page.locator("#err-trigger_amount")).to_contain_text(
        "When balance falls below: 1000000000000 is above the maximum of")
    expect(box.get_by_label("Recharge with")).to_have_attribute("aria-invalid", "true")
    expect(box.get_by_label("Recharge with")).to_have_value("ten")
    assert "_amount" not in (box.inner_text())
    assert api.credits(tid)["auto_recharge"]["enabled"] is False

    # fixed: saved, the notice shows once, and the address no longer carries it
    box.get_by_label("Recharge with").fill("80.00")
    box.get_by_label("When balance falls below").fill("20.00")
    box.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Auto-recharge settings saved.")
    expect(page).to_have_url(f"{server}/console")
    page.reload()
    expect(page.locator("#balance")).to_have_text("$100.00")
    expect(page.locator("#notice")).to_have_count(0)


def test_buy_form_flags_every_problem_of_a_new_card(page: Page, server: str,
                                                    api: Api) -> None:
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.goto(f"{server}/console/buy")
    form = page.locator("#buy-form")
    form.get_by_label("Amount").fill("1000000000000")
    form.get_by_label("Add a credit or debit card").check()
    form.get_by_label("Card number").fill("4242424242424241")  # fails the Luhn check
    form.get_by_label("Expiry month").fill("12")
    form.get_by_label("Expiry year").fill("20")
    form.get_by_role("button", name="Review order").click()
    expect(page.locator("#err-amount")).to_have_text(
        "Amount: 1000000000000 is above the maximum of 100000.")
    expect(page.locator("#err-card_number")).to_have_text(
        "Card number: fails the Luhn check.")
    expect(page.locator("#err-card_exp")).to_contain_text("Expiry year '20' must be a "
                                                          "four-digit year")
    expect(form.get_by_label("Expiry year")).to_have_attribute("aria-invalid", "true")
    assert api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json() == []


def test_card_form_shows_every_error_at_once(page: Page, server: str, api: Api) -> None:
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.goto(f"{server}/console/payment-methods")
    card = page.locator("#add-card")
    card.get_by_label("Card number").fill("1234")
    card.get_by_label("Expiry month").fill("13")
    card.get_by_label("Expiry year").fill("twenty")
    card.get_by_role("button", name="Add card").click()
    expect(page.locator("#err-card_number")).to_have_text(
        "Card number: must be 12 to 19 digits.")
    expect(page.locator("#err-card_exp")).to_contain_text(
        "Expiry month '13' must be 1 to 12. Expiry year 'twenty' must be a four-digit year "
        "such as ")
    card.get_by_label("Card number").fill("4242424242424242")
    card.get_by_label("Expiry month").fill("12")
    card.get_by_label("Expiry year").fill("2020")
    card.get_by_role("button", name="Add card").click()
    expect(page.locator("#err-card_exp")).to_have_text("The card expired at the end of 12/2020.")
    assert api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json() == []

    card.get_by_label("Card number").fill("4242424242424242")  # never kept on the page
    card.get_by_label("Expiry year").fill("2035")
    card.get_by_role("button", name="Add card").click()
    expect(page.locator("#notice")).to_have_text("Card added.")
    expect(page).to_have_url(f"{server}/console/payment-methods")
    page.reload()
    expect(page.locator("#notice")).to_have_count(0)


@pytest.mark.parametrize("keep", [False, True])
def test_a_card_refused_at_checkout_is_kept_only_when_asked(page: Page, server: str,
                                                            api: Api, keep: bool) -> None:
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.goto(f"{server}/console/buy")
    form = page.locator("#buy-form")
    form.get_by_label("Amount").fill("60.00")
    form.get_by_label("Add a credit or debit card").check()
    form.get_by_label("Card number").fill("4000000000000002")  # the test gateway declines it
    form.get_by_label("Expiry month").fill("12")
    form.get_by_label("Expiry year").fill("2035")
    if keep:
        form.get_by_label("Keep this card even if the payment is refused").check()
    form.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#err-method")).to_contain_text("declined")
    saved = api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()
    assert api.credits(tid)["balance"] == "0.00"
    if keep:
        assert [m["last4"] for m in saved] == ["0002"]
        expect(page.locator("#err-method")).not_to_contain_text("not saved")
        return
    assert saved == []
    expect(page.locator("#err-method")).to_contain_text("The card was not saved.")
    # not offered, not preselected: a new card is the choice again
    page.goto(f"{server}/console/buy")
    expect(page.locator("#method input[type=radio]")).to_have_count(2)  # new card, agreement
    expect(page.get_by_label("Add a credit or debit card")).to_be_checked()
