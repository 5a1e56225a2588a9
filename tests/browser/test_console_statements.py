"""Charge explanations and monthly statements in the console (issue 21), in real headless
Chromium: a row of the usage report opens a panel that says why the call cost what it did,
and the Statements page shows a month and downloads it as PDF."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import add_admin, login
from tests.browser.test_console_reports import UK, Voice, usage, voice  # noqa: F401
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def test_clicking_a_call_opens_its_explanation(page: Page, server: str, api: Api,
                                               usage: Voice) -> None:  # noqa: F811
    login(page, server, add_admin(api, usage.tid, "reports_reader"))
    page.goto(f"{server}/console/reports?days=28")
    expect(page.locator("#explanation")).to_have_count(0)
    row = page.locator("#usage tbody tr", has_text="call-1")
    row.locator("td").last.click(force=True)  # anywhere on the row (the link covers it)
    panel = page.locator("#explanation")
    expect(panel).to_be_visible()
    want = api.get(f"/v1/tenants/{usage.tid}/calls/call-1/explanation", expect=200).json()
    expect(panel.locator("h2")).to_have_text(f"Why call-1 cost {want['charge']} USD")
    expect(page.locator("#explanation-charge")).to_contain_text("0.04 USD")
    expect(page.locator("#explanation-rate")).to_contain_text("United Kingdom")
    expect(page.locator("#explanation-rate")).to_contain_text("deck version 1")
    expect(page.locator("#explanation-seconds")).to_contain_text("90 s talked")
    expect(page.locator("#explanation-seconds")).to_contain_text("billed as 120 s")
    lot = want["lots"][0]
    expect(page.locator("#explanation-lots")).to_contain_text(f"{lot['lot_id']}: 0.04 USD")
    expect(page.locator("#explanation-txn")).to_have_text(want["ledger_transaction_id"])
    expect(page.locator("#usage tbody tr.explained")).to_contain_text("call-1")
    # a pooled call says which pool and how full it was
    page.locator("#usage tbody tr", has_text="dom-1").locator("a.explain").click()
    expect(page.locator("#explanation-pool")).to_contain_text("3 min, used 0 → 3")
    page.locator("#explanation-close").click()
    expect(page.locator("#explanation")).to_have_count(0)
    # SMS too
    page.goto(f"{server}/console/reports?kind=sms&days=28")
    page.locator("#usage tbody tr", has_text="sms-1").locator("a.explain").click()
    expect(page.locator("#explanation h2")).to_have_text("Why sms-1 cost 0.10 USD")


def test_the_statements_page_downloads_a_pdf(page: Page, server: str, api: Api,
                                             usage: Voice, tmp_path: Path) -> None:  # noqa: F811
    login(page, server, add_admin(api, usage.tid, "billing_admin"))
    page.goto(f"{server}/console")
    page.get_by_role("link", name="Statements").click()
    expect(page.locator("h1")).to_contain_text("2030-02")  # the last month that ended
    feb = api.get(f"/v1/tenants/{usage.tid}/statements/2030-02", expect=200).json()
    closing = page.locator('#statement tr[data-line="closing_balance"] td.num')
    expect(closing).to_have_text(f"{feb['closing_balance']} USD")
    expect(page.locator("#status")).to_contain_text("final")
    page.get_by_role("link", name="2030-03 →").click()
    expect(page.locator("#status")).to_contain_text("not final")
    march = api.get(f"/v1/tenants/{usage.tid}/statements/2030-03", expect=200).json()
    expect(page.locator('#statement tr[data-line="opening_balance"] td.num')).to_have_text(
        f"{feb['closing_balance']} USD")
    expect(page.locator('#statement tr[data-line="usage.sms"] td.num')).to_have_text(
        f"{march['usage']['sms']} USD")
    with page.expect_download() as info:
        page.locator("#download-pdf").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"statement-{usage.tid}-2030-03.pdf"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    text = subprocess.run(["pdftotext", "-layout", str(target), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert march["closing_balance"] in text and march["tenant_name"] in text
    page.goto(f"{server}/console/statements?month=2030-13")
    expect(page.locator("#error")).to_contain_text("validation_error")
