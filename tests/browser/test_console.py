"""The web console in real headless Chromium (Debian's ``chromium`` package, via Playwright).

Each test serves ``create_app`` with uvicorn on a free 127.0.0.1 port (``conftest.py``), sets
the tenant up through the REST API, then signs in and clicks through the pages like a person
would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login
from tests.conftest import Api

DECLINED_CARD = "4000000000000002"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@dataclass
class Tenant:
    id: str
    card: str


@pytest.fixture
def tenant(api: Api) -> Tenant:
    tid = api.tenant("US")
    return Tenant(tid, api.card(tid))


def _add_funds(page: Page, amount: str, method_label: str | None = None) -> None:
    form = page.locator("#add-funds form")
    form.get_by_label("Amount").fill(amount)
    if method_label is not None:
        form.get_by_label("Payment method").select_option(label=method_label)
    form.get_by_role("button", name="Add funds").click()


def test_wrong_password_shows_an_error(page: Page, server: str, api: Api,
                                       tenant: Tenant) -> None:
    email = add_admin(api, tenant.id, "global_admin")
    login(page, server, email, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(f"{server}/login")
    expect(page.get_by_label("Email")).to_have_value(email)
    assert not [c for c in page.context.cookies() if c["name"] == "cc_session"]


def test_console_without_a_session_redirects_to_login(page: Page, server: str) -> None:
    page.goto(f"{server}/console")
    expect(page).to_have_url(f"{server}/login")
    page.goto(f"{server}/console/users")
    expect(page).to_have_url(f"{server}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_global_admin_sees_balance_and_lots(page: Page, server: str, api: Api,
                                            tenant: Tenant) -> None:
    assert api.order(tenant.id, "100.00", tenant.card).status_code == 201
    email = add_admin(api, tenant.id, "global_admin")
    login(page, server, email)
    expect(page).to_have_url(f"{server}/console")
    expect(page.locator("#balance")).to_have_text("100.00")
    expect(page.locator("#reserved")).to_have_text("0.00")
    expect(page.locator("#available")).to_have_text("100.00")
    lots = page.locator("#lots tbody tr")
    expect(lots).to_have_count(1)
    expect(lots.first.locator("td")).to_have_text(
        [re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"), "100.00", "100.00",
         re.compile(r"\d{4}-\d\d-\d\d"), "order"])
    expect(page.locator("#ledger tbody tr")).to_have_count(1)
    expect(page.locator("#add-funds")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "cc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_add_funds_form_adds_a_lot(page: Page, server: str, api: Api, tenant: Tenant) -> None:
    api.post(f"/v1/tenants/{tenant.id}/payment-methods",
             {"type": "enterprise_agreement", "agreement_number": "EA-7781"}, expect=201)
    assert api.order(tenant.id, "100.00", tenant.card).status_code == 201
    login(page, server, add_admin(api, tenant.id, "global_admin"))
    expect(page.locator("#balance")).to_have_text("100.00")

    _add_funds(page, "75.50", "Visa •••• 4242 (exp 12/2035)")
    expect(page.locator("#notice")).to_contain_text("Added 75.50 USD")
    expect(page.locator("#balance")).to_have_text("175.50")
    lots = page.locator("#lots tbody tr")
    expect(lots).to_have_count(2)
    expect(lots.nth(1).locator("td").nth(1)).to_have_text("75.50")  # FIFO: newest last

    form = page.locator("#add-funds form")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value") or ""
              for name in ("csrf", "token")}
    form.get_by_label("PO number").fill("PO-123")
    _add_funds(page, "50", "Enterprise Agreement EA-7781")
    expect(page.locator("#balance")).to_have_text("225.50")
    expect(lots).to_have_count(3)
    assert api.credits(tenant.id)["balance"] == "225.50"
    page.screenshot(path="/tmp/console.png", full_page=True)

    # The same form submitted again (double click, resubmit) never pays twice.
    pms = {m.get_attribute("value") for m in form.locator("option").all()} - {tenant.card}
    r = page.request.post(f"{server}/console/orders", form={
        **fields, "amount": "50", "payment_method_id": pms.pop(), "po_number": "PO-123"})
    assert r.ok and "already submitted" in r.text()
    assert api.credits(tenant.id)["balance"] == "225.50"


def test_declined_card_shows_the_error_and_keeps_the_balance(page: Page, server: str, api: Api,
                                                             tenant: Tenant) -> None:
    assert api.order(tenant.id, "100.00", tenant.card).status_code == 201
    api.card(tenant.id, DECLINED_CARD)
    login(page, server, add_admin(api, tenant.id, "billing_admin"))

    _add_funds(page, "60.00", "Visa •••• 0002 (exp 12/2035)")
    expect(page.get_by_role("alert")).to_contain_text("payment_declined")
    expect(page.locator("#balance")).to_have_text("100.00")
    expect(page.locator("#lots tbody tr")).to_have_count(1)
    expect(page.locator("#add-funds").get_by_label("Amount")).to_have_value("60.00")

    _add_funds(page, "10.00", "Visa •••• 4242 (exp 12/2035)")
    expect(page.get_by_role("alert")).to_contain_text("amount_below_minimum")
    assert api.credits(tenant.id)["balance"] == "100.00"


def test_reports_reader_cannot_add_funds(page: Page, server: str, api: Api,
                                         tenant: Tenant) -> None:
    assert api.order(tenant.id, "100.00", tenant.card).status_code == 201
    login(page, server, add_admin(api, tenant.id, "reports_reader"))
    expect(page.locator("#balance")).to_have_text("100.00")
    expect(page.locator("#add-funds")).to_have_count(0)
    expect(page.get_by_role("button", name="Add funds")).to_have_count(0)
    expect(page.locator("#auto-recharge form")).to_have_count(0)

    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    r = page.request.post(f"{server}/console/orders", form={
        "amount": "100.00", "payment_method_id": tenant.card, "csrf": csrf, "token": "x"})
    assert r.status == 403
    assert "cannot change billing" in r.text()
    assert api.credits(tenant.id)["balance"] == "100.00"


def test_auto_recharge_form_and_users_page(page: Page, server: str, api: Api,
                                           tenant: Tenant) -> None:
    api.post(f"/v1/tenants/{tenant.id}/users", {"upn": "ann@example.com", "display_name": "Ann",
                                                "usage_location": "US"}, expect=201)
    login(page, server, add_admin(api, tenant.id, "global_admin"))
    box = page.locator("#auto-recharge")
    box.get_by_text("Change").click()
    box.get_by_label("Auto-recharge on").check()
    box.get_by_label("Recharge with").fill("80.00")
    box.get_by_label("When balance falls below").fill("20.00")
    box.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Auto-recharge settings saved.")
    expect(box.locator("dd").first).to_have_text("On")
    ar = api.credits(tenant.id)["auto_recharge"]
    assert (ar["enabled"], ar["recharge_amount"], ar["trigger_amount"]) == (True, "80.00",
                                                                            "20.00")

    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(f"{server}/console/users")
    expect(page.locator("#users tbody tr")).to_have_count(1)
    expect(page.locator("#users tbody tr td").first).to_have_text("ann@example.com")


def test_logout_ends_the_session(page: Page, server: str, api: Api, tenant: Tenant) -> None:
    login(page, server, add_admin(api, tenant.id, "global_admin"))
    expect(page).to_have_url(f"{server}/console")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server}/login")
    assert not [c for c in page.context.cookies() if c["name"] == "cc_session"]
    page.goto(f"{server}/console")
    expect(page).to_have_url(f"{server}/login")


def test_add_funds_applies_the_apis_validation(page: Page, server: str, api: Api,
                                               tenant: Tenant) -> None:
    """Issue 9 item 11: a 3,000-character PO number the API refuses (100 at most)."""
    ea = api.post(f"/v1/tenants/{tenant.id}/payment-methods",
                  {"type": "enterprise_agreement", "agreement_number": "EA-1"},
                  expect=201).json()["id"]
    api_refusal = api.order(tenant.id, "60.00", ea, po_number="P" * 3000)
    assert api_refusal.status_code == 422
    login(page, server, add_admin(api, tenant.id, "billing_admin"))
    form = page.locator("#add-funds form")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value") or ""
              for name in ("csrf", "token")}
    r = page.request.post(f"{server}/console/orders", form={
        **fields, "amount": "60.00", "payment_method_id": ea, "po_number": "P" * 3000})
    assert r.status == 422
    assert "validation_error" in r.text() and "po_number" in r.text()
    assert api.credits(tenant.id)["balance"] == "0.00"
