"""The operator console in real headless Chromium: an operator admin signs in, creates a
tenant (errors next to the fields), sets its guardrails, loads a rate deck (a bad file shows
every bad line), looks a number up, creates an API key, and sees balances and recharge
failures across tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from commcredits.services.access import authenticate
from tests.browser.helpers import PASSWORD, shoot
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

GOOD = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" \
       "44,United Kingdom,any,0.0200,0.0000,60\n1,United States,any,0.0100,0,60\n"
BAD = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n" \
      "44,United Kingdom,any,0.0200,0.0000,60\n" \
      "x1,Nowhere,any,0.01,0,60\n" \
      "33,France,any,-1,0,60\n"


def _sign_in(page: Page, server: str, api: Api) -> str:
    email = "ops@example.com"
    api.post("/v1/operator-admins", {"email": email, "password": PASSWORD}, expect=201)
    page.goto(f"{server}/operator/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}/operator")
    return email


def test_operator_creates_a_tenant_and_sets_guardrails(page: Page, server: str,
                                                       api: Api) -> None:
    tid = api.tenant("US")
    assert api.order(tid, "1234.50", api.card(tid)).status_code == 201
    _sign_in(page, server, api)
    expect(page.locator("#tenants tbody tr")).to_have_count(1)
    expect(page.locator("#tenants tbody tr").first).to_contain_text("$1,234.50")

    box = page.locator("#create-tenant")
    box.get_by_label("Organization name").fill("Fabrikam GmbH")
    box.get_by_label("Country").fill("ZZ")
    box.get_by_role("button", name="Create tenant").click()
    expect(page.locator("#err-country")).to_contain_text("not an ISO 3166")
    expect(box.get_by_label("Organization name")).to_have_value("Fabrikam GmbH")
    assert len(api.get("/v1/tenants", expect=200).json()) == 1

    box.get_by_label("Country").fill("DE")
    box.get_by_label("Commerce model").select_option("nce")
    box.get_by_role("button", name="Create tenant").click()
    expect(page.locator("#notice")).to_contain_text("created")
    made = [t for t in api.get("/v1/tenants", expect=200).json() if t["name"] == "Fabrikam GmbH"]
    assert made and made[0]["currency"] == "EUR" and made[0]["commerce"] == "nce"
    expect(page.locator("#tenants")).to_contain_text("0,00 €")
    shoot(page, "operator-tenants")

    page.get_by_role("link", name="Fabrikam GmbH").click()
    g = page.locator("#guardrails")
    g.get_by_label("Blocked prefixes").fill("881 882")
    g.get_by_label("Most one user may spend per day").fill("abc")
    g.get_by_role("button", name="Save").click()
    expect(page.locator("#guardrails #error")).to_contain_text("User daily cap")
    g.get_by_label("Most one user may spend per day").fill("25.00")
    g.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Saved.")
    t = api.get(f"/v1/tenants/{made[0]['id']}", expect=200).json()
    assert t["user_daily_cap"] == "25.00"


def test_operator_loads_a_rate_deck_and_creates_a_key(page: Page, server: str, api: Api,
                                                      tmp_path: Path) -> None:
    _sign_in(page, server, api)
    page.get_by_role("link", name="Rate decks").click()
    expect(page.get_by_text("No rate deck yet")).to_be_visible()
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    up = page.locator("#upload")
    up.get_by_label("Currency").fill("USD")
    up.get_by_label("Deck (CSV file)").set_input_files(str(bad))
    up.get_by_role("button", name="Upload deck").click()
    lines = page.locator("#problems tbody tr td:first-child")
    expect(lines).to_have_text(["3", "4"])
    expect(page.get_by_text("No rate deck yet")).to_be_visible()

    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    up.get_by_label("Currency").fill("USD")
    up.get_by_label("Deck (CSV file)").set_input_files(str(good))
    up.get_by_role("button", name="Upload deck").click()
    expect(page.locator("#notice")).to_have_text("USD deck version 1: 2 rates.")
    expect(page.locator("#decks tbody tr td")).to_have_text(
        ["USD", "1", "2", page.locator("#decks tbody tr td").nth(3).inner_text()])

    look = page.locator("#lookup")
    look.get_by_label("Currency").fill("USD")
    look.get_by_label("Number").fill("+442079460123")
    look.get_by_role("button", name="Look up").click()
    expect(page.locator("#rate")).to_contain_text("United Kingdom")
    expect(page.locator("#rate")).to_contain_text("0.02 USD")
    shoot(page, "operator-decks")

    page.get_by_role("link", name="API keys").click()
    page.locator("#create-key select[name=role]").select_option("switch")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#key").inner_text()
    with api.rt.db.uow() as uow:
        who = authenticate(uow, key)
    assert who is not None and who.role == "switch"
    expect(page.locator(f"#key-{who.id}")).to_contain_text("switch")
    page.locator("#create-key select[name=role]").select_option("global_admin")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#error")).to_have_text("A global admin key needs a tenant id.")


def test_operator_revokes_a_key_and_sees_its_last_use(page: Page, server: str,
                                                      api: Api) -> None:
    import httpx
    _sign_in(page, server, api)
    api.set_clock("2030-05-01T09:00:00Z")
    page.goto(f"{server}/operator/keys")
    page.locator("#create-key select[name=role]").select_option("operator")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#key").inner_text()
    with api.rt.db.uow() as uow:
        who = authenticate(uow, key)
    assert who is not None
    row = page.locator(f"#key-{who.id}")
    expect(row.locator("td.last-used")).to_have_text("never")
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server}/v1/tenants", headers=auth).status_code == 200
    page.reload()
    expect(row.locator("td.last-used")).to_have_text("2030-05-01 09:00 UTC")
    expect(row.locator("td.status")).to_have_text("active")
    row.get_by_role("button", name=f"Revoke {who.id}").click()
    expect(page.locator("#notice")).to_have_text(f"Key {who.id} revoked.")
    expect(row.locator("td.status")).to_have_text("revoked 2030-05-01 09:00 UTC")
    expect(row.get_by_role("button")).to_have_count(0)
    r = httpx.get(f"{server}/v1/tenants", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    shoot(page, "operator-keys")
    # signing out ends the operator session on the server: the old cookie is refused
    cookie = next(c for c in page.context.cookies() if c["name"] == "cc_operator")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server}/operator/login")
    page.context.add_cookies([cookie])
    page.goto(f"{server}/operator")
    expect(page).to_have_url(f"{server}/operator/login")


def test_operator_pages_need_an_operator_session(page: Page, server: str, api: Api) -> None:
    page.goto(f"{server}/operator")
    expect(page).to_have_url(f"{server}/operator/login")
    # a tenant admin's password does not open the operator console
    tid = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/admins", {"email": "ga@example.com", "password": PASSWORD,
                                           "role": "global_admin"}, expect=201)
    page.get_by_label("Email").fill("ga@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    r = page.request.post(f"{server}/operator/tenants", form={"csrf": "x", "name": "X",
                                                               "country": "US"})
    assert r.url.endswith("/operator/login")
    assert len(api.get("/v1/tenants", expect=200).json()) == 1
