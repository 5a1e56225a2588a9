"""Issue 23: with the Stripe gateway the console takes a card in Stripe's own element, in real
headless Chromium. Stripe.js cannot be loaded here (no internet), so the page's script URL is
a setting (``COMMCREDITS_STRIPE_JS_URL``) pointed at the local fake of Stripe, whose card
element, like the real one, sends the number to Stripe and not to the page's server. Every
request the browser makes to the service is recorded: none carries the card number."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, Request, expect

from commcredits.adapters.db import schema
from tests.browser.helpers import add_admin, login
from tests.conftest import Api
from tests.payments.conftest import runtime, settings, stripe_fake  # noqa: F401 (fixtures)
from tests.payments.stripe_fake import StripeFake

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
CARD = "4242424242424242"


def _record(page: Page, server: str) -> list[tuple[str, str]]:
    """Every request the page sends to the service: (URL, body)."""
    seen: list[tuple[str, str]] = []

    def on_request(request: Request) -> None:
        if request.url.startswith(server):
            seen.append((request.url, request.post_data or ""))
    page.on("request", on_request)
    return seen


def test_a_card_goes_to_stripe_and_never_to_the_service(page: Page, server: str, api: Api,
                                                       stripe_fake: StripeFake) -> None:  # noqa: F811
    tid = api.tenant("US")
    sent = _record(page, server)
    login(page, server, add_admin(api, tid, "billing_admin"))
    page.goto(f"{server}/console/payment-methods")
    form = page.locator("#stripe-card-form")
    expect(form.locator("#fake-stripe-card")).to_be_visible()  # Stripe's element, mounted
    assert form.locator("input[name=card_number]").count() == 0  # and no field of ours
    # a card Stripe refuses: Stripe's message, nothing saved
    form.locator("#fake-stripe-card").fill("4000000000000002 12/2035")
    form.get_by_role("button", name="Add card").click()
    expect(page.locator("#card-errors")).to_have_text("Your card was declined.")
    assert api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json() == []
    form.locator("#fake-stripe-card").fill(f"{CARD} 12/2035")
    form.get_by_role("button", name="Add card").click()
    expect(page.locator("#notice")).to_have_text("Card added.")
    expect(page.locator("#methods")).to_contain_text("4242")
    (pm,) = api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()
    assert (pm["brand"], pm["last4"], pm["exp_year"]) == ("visa", "4242", 2035)
    # buy credits with it: no card field on the buy page either
    page.goto(f"{server}/console/buy")
    buy = page.locator("#buy-form")
    assert buy.locator("input[name=card_number]").count() == 0
    expect(page.locator("#new-card-elsewhere")).to_be_visible()
    buy.get_by_label("Amount").fill("80.00")
    buy.get_by_label("Visa").check()
    buy.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#receipt-amount")).to_have_text("$80.00")
    (intent,) = stripe_fake.succeeded()
    assert (intent["amount"], intent["off_session"]) == (8000, "true")
    # the number reached Stripe (the fake), and nothing of ours: no request, no row
    assert any(CARD in body for path, body in stripe_fake.bodies if path.endswith("/confirm"))
    posts = [(url, body) for url, body in sent if body]
    assert any("setup_intent_id=seti_" in body for _, body in posts)
    leaked = [(url, body) for url, body in sent if CARD in url or CARD in body
              or "4000000000000002" in body]
    assert leaked == []
    with api.rt.db.uow(readonly=True) as uow:
        dump = " ".join(str(v) for t in schema.metadata.sorted_tables
                        for r in uow.conn.execute(sa.select(t)) for v in r)
    assert CARD not in dump


def test_without_stripe_js_the_page_says_so(page: Page, server: str, api: Api,
                                            stripe_fake: StripeFake) -> None:  # noqa: F811
    """Stripe unreachable when the page is made: the form says why and adds nothing."""
    tid = api.tenant("US")
    login(page, server, add_admin(api, tid, "billing_admin"))
    stripe_fake.fail("/v1/customers")
    page.goto(f"{server}/console/payment-methods")
    expect(page.locator("#card-errors")).to_contain_text("Stripe did not answer")
    expect(page.locator("#stripe-card-form button")).to_be_disabled()


