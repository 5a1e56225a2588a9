"""Spend and forecast, notifications and the audit log in the console, in real headless
Chromium; and screenshots of the main pages at 390 px and 1280 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login, shoot
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

DECK = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" \
       "44,United Kingdom,any,1.0000,0.0000,60\n1,United States,any,0.0100,0,60\n"
ALICE, NUMBER = "alice@contoso.com", "+14255550100"


@pytest.fixture
def tid(api: Api) -> str:
    """1,000.00 bought on 2030-01-01; seven UK calls of 2.00 on the next seven days; the
    clock on 2030-01-28."""
    api.set_clock("2030-01-01T10:00:00Z")
    r = api.client.put("/v1/rate-decks/USD", content=DECK.encode(), headers={
        "Authorization": f"Bearer {api.operator}", "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    tid = api.tenant("US")
    for sku in ("MCOEV", "MCOPSTN1"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 1}, expect=201)
    api.post(f"/v1/tenants/{tid}/users", {"upn": ALICE, "display_name": "Alice",
                                          "usage_location": "US", "phone_number": NUMBER},
             expect=201)
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/{ALICE}/licenses/{sku}", expect=200)
    assert api.order(tid, "1000.00", api.card(tid)).status_code == 201
    switch = api.new_key("switch")
    for day in range(2, 9):
        api.set_clock(f"2030-01-{day:02d}T09:00:00Z")
        call = {"call_id": f"c{day}", "tenant_id": tid, "call_type": "user_out",
                "from": NUMBER, "to": "+442079460123", "upn": ALICE}
        assert api.post("/v1/calls", call, key=switch, expect=200).json()["decision"] == \
            "allowed"
        end = api.post(f"/v1/calls/c{day}/end", {"duration_s": 120}, key=switch,
                       expect=200).json()
        assert end["charge"] == "2.00"
    api.set_clock("2030-01-28T12:00:00Z")
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["bill@contoso.com"]},
            expect=200)
    return tid


def test_spend_forecast_and_apply_the_recommendation(page: Page, server: str, api: Api,
                                                     tid: str) -> None:
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.get_by_role("link", name="Spend").click()
    expect(page.locator("#spend-chart rect.spend")).to_have_count(28)
    expect(page.locator("#spend-chart rect.spend title").nth(6)).to_have_text(
        "2030-01-07: $2.00")
    expect(page.locator("#spent")).to_have_text("$14.00")
    expect(page.locator("#burn")).to_have_text("$0.50")
    expect(page.locator("#runout")).to_have_text("23 June 2035")  # 986.00 / 0.50 = 1,972 days
    expect(page.locator("#rec-trigger")).to_have_text("$4.00")
    expect(page.locator("#rec-recharge")).to_have_text("$50.00")
    # 986.00 left, 0.50 a day for the 338 days to its expiry: 169.00 spent, 817.00 lost
    expect(page.locator("#expiring li")).to_have_text(["$817.00 expires on 1 January 2031"])
    shoot(page, "spend")

    page.get_by_role("button", name="Apply recommendation").click()
    expect(page.locator("#notice")).to_have_text("Auto-recharge set to the recommendation.")
    ar = api.credits(tid)["auto_recharge"]
    assert (ar["enabled"], ar["recharge_amount"], ar["trigger_amount"]) == (True, "50.00",
                                                                            "4.00")
    page.get_by_role("link", name="Last 90 days").click()
    expect(page.locator("#spend-chart rect.spend")).to_have_count(90)
    expect(page.locator("#spent")).to_have_text("$14.00")


def test_notifications_and_audit_pages(page: Page, server: str, api: Api, tid: str) -> None:
    email = add_admin(api, tid, "global_admin")
    login(page, server, email)
    page.goto(f"{server}/console/buy")
    page.get_by_label("Amount").fill("75")
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()

    page.get_by_role("link", name="Notifications").click()
    expect(page.locator("#recipients")).to_contain_text("bill@contoso.com")
    expect(page.locator("#recipients")).to_contain_text(f"Global admin: {email}")
    shoot(page, "notifications")

    page.get_by_role("link", name="Audit log").click()
    first = page.locator("#audit tbody tr").first
    expect(first).to_contain_text("Placed an order")
    expect(first).to_contain_text(email)
    expect(first.locator("td").nth(3)).to_have_text("console")
    expect(page.locator("#audit")).to_contain_text("Assigned a license")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download CSV").click()
    text = open(dl.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert text.splitlines()[0] == "id,at,actor,actor_role,via,action,target,before,after"
    assert "order.place" in text
    shoot(page, "audit")


class _RefusingMailer:
    def send(self, to: str, subject: str, body: str) -> None:
        import smtplib
        raise smtplib.SMTPRecipientsRefused({to: (550, b"5.1.1 mailbox unavailable")})


def test_notifications_say_what_failed_and_why(page: Page, server: str, api: Api,
                                               tid: str) -> None:
    from commcredits.domain import notifications as notices
    from commcredits.services import notify
    from commcredits.services.tenants import get_tenant
    with api.rt.db.uow() as uow:
        notify.queue(uow, get_tenant(uow, tid), notices.balance_zero("Contoso", "USD", "z1"))
        uow.commit()
    notify.deliver_due(api.rt.db, _RefusingMailer())  # the mail server refuses it
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": []}, expect=200)
    with api.rt.db.uow() as uow:  # and one with nobody to send it to
        notify.queue(uow, get_tenant(uow, tid), notices.balance_zero("Contoso", "USD", "z2"))
        uow.commit()
    login(page, server, add_admin(api, tid, "reports_reader"))
    page.get_by_role("link", name="Notifications").click()
    expect(page.locator("#failed")).to_contain_text("2 notifications not delivered")
    expect(page.locator("#no-mailer")).to_be_visible()  # the test runtime has no SMTP
    refused = page.locator("#notifications tr.failed", has_text="bill@contoso.com")
    expect(refused).to_contain_text("retrying")
    expect(refused.locator("td.error-text")).to_contain_text(
        "SMTPRecipientsRefused: {'bill@contoso.com': (550, b'5.1.1 mailbox unavailable')}")
    expect(refused.locator("td.error-text")).to_contain_text("next try 2030-01-28 12:01 UTC")
    nobody = page.locator("#notifications tr.failed", has_text="no recipient")
    expect(nobody.locator("td.error-text")).to_contain_text("add a billing contact")
    shoot(page, "notifications-failed")
    listed = api.get(f"/v1/tenants/{tid}/notifications", expect=200).json()
    assert {n["status"]: n["error"] is not None for n in listed} == {"retrying": True,
                                                                     "no_recipient": True}


def test_audit_log_is_for_global_admins_only(page: Page, server: str, api: Api,
                                             tid: str) -> None:
    login(page, server, add_admin(api, tid, "billing_admin"))
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    r = page.request.get(f"{server}/console/audit")
    assert r.status == 403


def test_main_pages_fit_a_phone(page: Page, server: str, api: Api, tid: str) -> None:
    login(page, server, add_admin(api, tid, "global_admin"))
    shoot(page, "credits")
    page.goto(f"{server}/console/users")
    shoot(page, "users")
    page.goto(f"{server}/console/orders")
    shoot(page, "orders")
    page.goto(f"{server}/console/reports?kind=pstn&days=28")
    expect(page.locator("#usage tbody tr")).to_have_count(7)
    shoot(page, "reports")
    page.goto(f"{server}/console/pools")
    shoot(page, "pools")


ALL_OF_ALICE = "Total: 14 min 0 s · $14.00 charged · $0.00 uncollected"
NOTHING = "Total: 0 min 0 s · $0.00 charged · $0.00 uncollected"


def test_report_totals_and_a_per_user_filter(page: Page, server: str, api: Api,
                                             tid: str) -> None:
    api.post(f"/v1/tenants/{tid}/users", {"upn": "bob@contoso.com", "display_name": "Bob",
                                          "usage_location": "US"}, expect=201)
    login(page, server, add_admin(api, tid, "reports_reader"))
    page.goto(f"{server}/console/reports?kind=pstn&days=28")
    expect(page.locator("#totals")).to_have_text(ALL_OF_ALICE)

    page.get_by_label("User").fill("ALICE@contoso.com")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#usage tbody tr")).to_have_count(7)
    expect(page.locator("#summary")).to_contain_text("for ALICE@contoso.com")
    expect(page.locator("#totals")).to_have_text(ALL_OF_ALICE)
    # the period chips keep the filter
    page.get_by_role("link", name="Last 7 days").click()
    expect(page).to_have_url(f"{server}/console/reports?kind=pstn&days=7&user=ALICE%40contoso.com")
    expect(page.locator("#totals")).to_have_text(NOTHING)

    page.goto(f"{server}/console/reports?kind=pstn&days=28&user=bob@contoso.com")
    expect(page.locator("#usage tbody tr")).to_have_count(0)
    expect(page.locator("#totals")).to_have_text(NOTHING)
    page.get_by_role("link", name="All users").click()
    expect(page.locator("#usage tbody tr")).to_have_count(7)
