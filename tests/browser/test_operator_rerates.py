"""The operator console's re-rates page in real headless Chromium: a form computes a dry run
(errors shown, nothing stored), the page lists the diff per tenant and per call with a CSV
download, and Apply posts the corrections once."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import Page, expect

from tests.api.voice import UK, US, make_voice
from tests.browser.helpers import PASSWORD, shoot
from tests.conftest import Api
from tests.rerate.test_api import DEAR
from tests.rerate.world import put_deck

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def test_operator_dry_runs_a_rerate_and_applies_it(page: Page, server: str, api: Api,
                                                   tmp_path) -> None:
    voice = make_voice(api)
    voice.fund("5.00")
    for call_id, to in (("uk", UK), ("us", US)):
        voice.call(call_id, to)
        voice.end(call_id, 600)
    put_deck(api, DEAR)
    api.post("/v1/operator-admins", {"email": "ops@example.com", "password": PASSWORD},
             expect=201)
    page.goto(f"{server}/operator/login")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Re-rates").click()
    expect(page).to_have_url(f"{server}/operator/rerates")

    form = page.locator("#rerate-form")
    name = api.get(f"/v1/tenants/{voice.tid}").json()["name"]
    form.get_by_label("Tenant").select_option(label=name)
    form.get_by_label("From").fill("2030-03-31")
    form.get_by_label("To").fill("2030-03-01")
    form.get_by_role("button", name="Dry run").click()
    expect(page.locator("#error")).to_contain_text("after to")
    assert api.get("/v1/rerates").json() == []

    form.get_by_label("From").fill("2030-03-01")
    form.get_by_label("To").fill("2030-03-31")
    form.get_by_role("button", name="Dry run").click()
    expect(page.locator("#run-status")).to_have_text("dry run")
    expect(page.locator("#rerate-calls tbody tr")).to_have_count(1)
    expect(page.locator("#rerate-calls tbody tr").first).to_contain_text("0.20")
    expect(page.locator("#rerate-calls tbody tr").first).to_contain_text("0.50")
    expect(page.locator("#rerate-tenants")).to_contain_text("-0.30")
    assert voice.credits()["balance"] == "4.70"
    shoot(page, "operator-rerate-dry-run")

    with page.expect_download() as info:
        page.locator("#download-csv").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    rows = list(csv.reader(target.open(newline="")))
    assert rows[0][:2] == ["tenant_id", "call_id"] and rows[1][1] == "uk"

    page.get_by_role("button", name="Apply corrections").click()
    expect(page.locator("#notice")).to_have_text("Corrections posted.")
    expect(page.locator("#run-status")).to_have_text("applied")
    expect(page.locator("#apply")).to_have_count(0)
    assert voice.credits()["balance"] == "4.40"
    expect(page.locator("#runs tbody tr")).to_have_count(1)
