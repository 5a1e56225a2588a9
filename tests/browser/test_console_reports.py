"""Usage reports and minute pools in the console, in real headless Chromium.

The tenant is set up through the REST API like a switch would use it: a USD rate deck, a user
with a domestic calling plan and pay-per-minute (MCOEV + MCOPSTN1 + MCOPSTNPP), credits bought
with a card, then calls and messages on the manual clock. A reports reader signs in, reads
the reports page for several periods, downloads the CSV and Excel files and looks at the
minute pools.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import Page, expect

from commcredits.entrypoints.console import reports as console_reports
from tests.browser.helpers import add_admin, login
from tests.conftest import Api

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States,any,0.0100,0.0000,60
44,United Kingdom,any,0.0200,0.0000,60
44,United Kingdom SMS,sms,0.0500,0,1
"""
PSTN_COLUMNS = ["UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
                "User Display Name", "Caller ID", "Call Type", "Number Type",
                "Domestic/International", "Destination Dialed", "Destination Number",
                "Start Time", "End Time", "Duration Seconds", "Connection Fee", "Charge",
                "Currency", "Capability"]
SMS_COLUMNS = ["UsageId", "Message ID", "User Location", "AAD ObjectId", "UPN",
               "User Display Name", "Sender ID", "Message Type", "Number Type",
               "Domestic/International", "Destination", "Destination Number", "Sent Time",
               "Segments", "Charge", "Currency", "Capability"]
ALICE = "alice@contoso.com"
ALICE_NUMBER = "+14255550100"
UK = "+442079460123"
DOMESTIC = "+14255550199"
DOMESTIC_POOL = "domestic:US:MCOPSTN1"


@dataclass
class Voice:
    api: Api
    tid: str
    switch: str

    def call(self, call_id: str, to: str, duration: int) -> dict[str, Any]:
        body = {"call_id": call_id, "tenant_id": self.tid, "call_type": "user_out",
                "from": ALICE_NUMBER, "to": to, "upn": ALICE}
        decision = self.api.post("/v1/calls", body, key=self.switch, expect=200).json()
        assert decision["decision"] == "allowed", decision
        end: dict[str, Any] = self.api.post(f"/v1/calls/{call_id}/end",
                                            {"duration_s": duration}, key=self.switch,
                                            expect=200).json()
        return end

    def sms(self, message_id: str, to: str, segments: int) -> dict[str, Any]:
        body = {"message_id": message_id, "tenant_id": self.tid, "upn": ALICE,
                "from": ALICE_NUMBER, "to": to, "direction": "out", "segments": segments}
        result: dict[str, Any] = self.api.post("/v1/sms", body, key=self.switch,
                                               expect=200).json()
        return result


@pytest.fixture
def voice(api: Api) -> Voice:
    """Alice (US, MCOEV + MCOPSTN1 + MCOPSTNPP) with 100.00 USD of credits, on 2030-02-20."""
    api.set_clock("2030-02-20T10:00:00Z")
    r = api.client.put("/v1/rate-decks/USD", content=DECK.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    tid = api.tenant("US")
    for sku in ("MCOEV", "MCOPSTN1"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 5}, expect=201)
    api.post(f"/v1/tenants/{tid}/users", {"upn": ALICE, "display_name": "Alice Liddell",
                                          "usage_location": "US",
                                          "phone_number": ALICE_NUMBER}, expect=201)
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/{ALICE}/licenses/{sku}", expect=200)
    assert api.order(tid, "100.00", api.card(tid)).status_code == 201
    return Voice(api, tid, api.new_key("switch"))


@pytest.fixture
def usage(voice: Voice) -> Voice:
    """Three calls: one on 2030-02-20 (UK, 30 s → 0.02), two on 2030-03-10 (UK, 90 s → 0.04;
    domestic, 125 s → 3 included minutes of the MCOPSTN1 pool, 0.00) and a UK SMS of two
    segments (0.10). The clock is left on 2030-03-10 12:05 UTC."""
    assert voice.call("old-1", UK, 30)["charge"] == "0.02"
    voice.api.set_clock("2030-03-10T12:00:00Z")
    end = voice.call("call-1", UK, 90)
    assert (end["charge"], end["funding"]) == ("0.04", "credits")
    voice.api.set_clock("2030-03-10T12:05:00Z")  # distinct start times: a stable order
    end = voice.call("dom-1", DOMESTIC, 125)
    assert (end["charge"], end["included_minutes"]) == ("0.00", 3)
    assert voice.sms("sms-1", UK, 2)["charge"] == "0.10"
    return voice


def _headers(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#usage thead th").all_text_contents()]


def _cells(page: Page, n: int, *names: str) -> tuple[str, ...]:
    """The text of the named columns of the report table's row ``n``."""
    headers = _headers(page)
    row = page.locator("#usage tbody tr").nth(n)
    return tuple(row.locator("td").nth(headers.index(name)).inner_text() for name in names)


def _call_ids(page: Page) -> list[str]:
    return [_cells(page, i, "Call ID")[0]
            for i in range(page.locator("#usage tbody tr").count())]


def _download(page: Page, link: str, tmp_path: Path) -> Path:
    with page.expect_download() as info:
        page.locator(link).click()
    download = info.value
    assert download.failure() is None
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    return target


def test_reports_and_pools_need_a_session(page: Page, server: str) -> None:
    for path in ("/console/reports", "/console/reports?kind=sms&days=7",
                 "/console/reports/export?kind=pstn&format=csv", "/console/pools"):
        page.goto(f"{server}{path}")
        expect(page).to_have_url(f"{server}/login")
    r = page.request.get(f"{server}/console/reports/export?format=xlsx", max_redirects=0)
    assert (r.status, r.headers["location"]) == (303, "/login")


def test_pstn_report_periods_and_errors(page: Page, server: str, usage: Voice,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    login(page, server, add_admin(usage.api, usage.tid, "reports_reader"))
    page.get_by_role("link", name="Reports").click()
    expect(page).to_have_url(f"{server}/console/reports")
    expect(page.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("link", name="PSTN usage")).to_have_attribute("aria-current",
                                                                          "page")
    # default: the last 28 days (2030-02-11 .. 2030-03-10), oldest first, money as given
    expect(page.locator("#summary")).to_contain_text("3 calls from 2030-02-11 to 2030-03-10")
    expect(page.locator("#usage thead th")).to_have_text(list(console_reports.KEY_COLUMNS["pstn"]))
    rows = page.locator("#usage tbody tr")
    expect(rows).to_have_count(3)
    assert _call_ids(page) == ["old-1", "call-1", "dom-1"]
    assert _cells(page, 1, "UPN", "Call Type", "Destination Dialed", "Destination Number",
                  "Domestic/International", "Start Time", "Duration Seconds",
                  "Connection Fee", "Charge", "Currency") == (
        ALICE, "user_out", "United Kingdom", UK, "International", "2030-03-10 12:00:00 UTC",
        "90",
        "0.00", "0.04", "USD")
    assert _cells(page, 2, "Destination Number", "Domestic/International", "Charge") == (
        DOMESTIC, "Domestic", "0.00")
    expect(page.locator("#truncated")).to_have_count(0)
    page.screenshot(path="/tmp/reports.png", full_page=True)

    # every column of the export, in its order, on demand
    page.get_by_role("link", name="Show all 20 columns").click()
    expect(page).to_have_url(f"{server}/console/reports?kind=pstn&days=28&cols=all")
    expect(page.locator("#usage thead th")).to_have_text(PSTN_COLUMNS)
    assert _cells(page, 1, "Caller ID", "User Display Name", "End Time", "Capability",
                  "Charge") == (ALICE_NUMBER, "Alice Liddell", "2030-03-10 12:01:30 UTC",
                                "MCOPSTNPP", "0.04")
    assert _cells(page, 1, "UsageId")[0].startswith("use")
    page.get_by_role("link", name="Show the key columns").click()
    expect(page.locator("#usage thead th")).to_have_count(len(console_reports.KEY_COLUMNS["pstn"]))

    # the last 7 days leave the February call out
    page.get_by_role("link", name="Last 7 days").click()
    expect(page).to_have_url(f"{server}/console/reports?kind=pstn&days=7")
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current",
                                                                           "true")
    expect(page.locator("#summary")).to_contain_text("2 calls from 2030-03-04 to 2030-03-10")
    expect(rows).to_have_count(2)
    assert _call_ids(page) == ["call-1", "dom-1"]

    # a custom range: February only
    form = page.locator("#custom-range")
    form.get_by_label("From").fill("2030-02-01")
    form.get_by_label("To").fill("2030-02-28")
    form.get_by_role("button", name="Show range").click()
    expect(page.locator("#summary")).to_contain_text("1 call from 2030-02-01 to 2030-02-28")
    expect(rows).to_have_count(1)
    assert _cells(page, 0, "Call ID", "Charge") == ("old-1", "0.02")
    expect(page.locator("#download-csv")).to_have_attribute(
        "href", "/console/reports/export?kind=pstn&format=csv&from=2030-02-01&to=2030-02-28")

    # from after to: the service's message, the form kept for fixing
    form.get_by_label("From").fill("2030-03-10")
    form.get_by_label("To").fill("2030-03-01")
    form.get_by_role("button", name="Show range").click()
    expect(page.get_by_role("alert")).to_have_text(
        "validation_error: from (2030-03-10) is after to (2030-03-01)")
    expect(page.locator("#usage")).to_have_count(0)
    expect(page.locator("#download-csv")).to_have_count(0)
    expect(form.get_by_label("From")).to_have_value("2030-03-10")

    # more than a year, a date that does not exist, days and from together: 422, never a 500
    for query, message in (
            ("from=2029-01-01&to=2030-03-01", "a report covers at most one year"),
            ("from=2030-02-30", "'2030-02-30' is not a valid date (YYYY-MM-DD)"),
            ("from=yesterday", "is not a date (YYYY-MM-DD)"),
            ("days=14", "days must be 7 or 28"),
            ("days=7&from=2030-03-01", "give either days or from/to, not both"),
            ("kind=fax", "kind must be pstn or sms")):
        response = page.goto(f"{server}/console/reports?{query}")
        assert response is not None and response.status == 422, query
        expect(page.get_by_role("alert")).to_contain_text(message)
        expect(page.get_by_role("link", name="Last 28 days")).to_be_visible()
    response = page.goto(f"{server}/console/reports/export?format=csv&from=2030-03-02&to=2030"
                         "-03-01")
    assert response is not None and response.status == 422
    expect(page.get_by_role("alert")).to_contain_text("is after to")
    response = page.goto(f"{server}/console/reports/export?format=pdf")
    assert response is not None and response.status == 422
    expect(page.get_by_role("alert")).to_contain_text("format must be csv or xlsx")

    # more rows than the page shows: a note, and the downloads still have them all
    monkeypatch.setattr(console_reports, "REPORT_PAGE_ROWS", 2)
    page.goto(f"{server}/console/reports?kind=pstn&days=28")
    expect(page.locator("#truncated")).to_contain_text("3 rows; download for all")
    expect(rows).to_have_count(2)


def test_pstn_downloads_csv_and_xlsx(page: Page, server: str, usage: Voice,
                                     tmp_path: Path) -> None:
    login(page, server, add_admin(usage.api, usage.tid, "reports_reader"))
    page.goto(f"{server}/console/reports?kind=pstn&days=28")
    expect(page.locator("#usage tbody tr")).to_have_count(3)

    path = _download(page, "#download-csv", tmp_path)
    assert path.name == f"pstn-usage_{usage.tid}_2030-02-11_2030-03-10.csv"
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\r\n")
    table = list(csv.reader(io.StringIO(raw, newline="")))
    assert table[0] == PSTN_COLUMNS
    body = [dict(zip(PSTN_COLUMNS, row, strict=True)) for row in table[1:]]
    assert [(r["Call ID"], r["Charge"], r["Duration Seconds"]) for r in body] == [
        ("old-1", "0.02", "30"), ("call-1", "0.04", "90"), ("dom-1", "0.00", "125")]
    assert body[1]["End Time"] == "2030-03-10T12:01:30Z"

    path = _download(page, "#download-xlsx", tmp_path)
    assert path.name == f"pstn-usage_{usage.tid}_2030-02-11_2030-03-10.xlsx"
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    sheet = [list(r) for r in ws.iter_rows(values_only=True)]
    wb.close()
    assert sheet[0] == PSTN_COLUMNS
    charge, call_id = PSTN_COLUMNS.index("Charge"), PSTN_COLUMNS.index("Call ID")
    assert [(r[call_id], Decimal(str(r[charge]))) for r in sheet[1:]] == [
        ("old-1", Decimal("0.02")), ("call-1", Decimal("0.04")), ("dom-1", Decimal("0.00"))]
    assert sheet[2][PSTN_COLUMNS.index("Duration Seconds")] == 90

    # the 7-day download follows the page's period
    page.get_by_role("link", name="Last 7 days").click()
    path = _download(page, "#download-csv", tmp_path)
    assert path.name.endswith("_2030-03-04_2030-03-10.csv")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3  # header + 2 calls


def test_downloads_follow_the_user_filter(page: Page, server: str, usage: Voice,
                                          tmp_path: Path) -> None:
    """Filtered to one user, the page, its totals and both downloads have that user's rows
    only (the downloads used to have every user's)."""
    api, bob = usage.api, "bob@contoso.com"
    api.post(f"/v1/tenants/{usage.tid}/users", {"upn": bob, "display_name": "Bob",
                                                "usage_location": "US"}, expect=201)
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{usage.tid}/users/{bob}/licenses/{sku}", expect=200)
    api.set_clock("2030-03-10T12:10:00Z")
    call = {"call_id": "bob-1", "tenant_id": usage.tid, "call_type": "user_out",
            "from": DOMESTIC, "to": UK, "upn": bob}
    api.post("/v1/calls", call, key=usage.switch, expect=200)
    assert api.post("/v1/calls/bob-1/end", {"duration_s": 60}, key=usage.switch,
                    expect=200).json()["charge"] == "0.02"
    login(page, server, add_admin(api, usage.tid, "reports_reader"))
    page.goto(f"{server}/console/reports?kind=pstn&days=28")
    expect(page.locator("#usage tbody tr")).to_have_count(4)
    # at 1280 px every column of the table is in view, Currency (the last) included: no
    # horizontal scroll hides any of it (issue 10)
    currency = page.locator("#usage thead th", has_text="Currency").bounding_box()
    box = page.locator("#usage").locator("xpath=..").bounding_box()
    assert currency is not None and box is not None
    assert currency["x"] + currency["width"] <= box["x"] + box["width"]
    assert page.evaluate("[...document.querySelectorAll('.scroll')].every("
                         "e => e.scrollWidth <= e.clientWidth)")
    filter_form = page.locator("#user-filter")
    filter_form.get_by_label("User").fill("Bob@Contoso.com")
    filter_form.get_by_role("button", name="Filter").click()
    expect(page.locator("#usage tbody tr")).to_have_count(1)
    expect(page.locator("#totals")).to_contain_text("$0.02 charged")
    expect(page.locator(".downloads")).to_contain_text("Bob@Contoso.com only")
    path = _download(page, "#download-csv", tmp_path)
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert table[0] == PSTN_COLUMNS and [r[1] for r in table[1:]] == ["bob-1"]
    path = _download(page, "#download-xlsx", tmp_path)
    wb = openpyxl.load_workbook(path, read_only=True)
    sheet = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    assert sheet[0] == PSTN_COLUMNS and [r[1] for r in sheet[1:]] == ["bob-1"]
    filter_form.get_by_label("User").fill(ALICE)
    filter_form.get_by_role("button", name="Filter").click()
    path = _download(page, "#download-csv", tmp_path)
    assert [r[1] for r in list(csv.reader(io.StringIO(
        path.read_text(encoding="utf-8"), newline="")))[1:]] == ["old-1", "call-1", "dom-1"]


def test_sms_report(page: Page, server: str, usage: Voice, tmp_path: Path) -> None:
    login(page, server, add_admin(usage.api, usage.tid, "reports_reader"))
    page.goto(f"{server}/console/reports?days=7")
    page.get_by_role("link", name="SMS usage").click()
    expect(page).to_have_url(f"{server}/console/reports?kind=sms&days=7")
    expect(page.get_by_role("link", name="SMS usage")).to_have_attribute("aria-current", "page")
    expect(page.locator("#summary")).to_contain_text("1 message from 2030-03-04 to 2030-03-10")
    expect(page.locator("#usage thead th")).to_have_text(list(console_reports.KEY_COLUMNS["sms"]))
    rows = page.locator("#usage tbody tr")
    expect(rows).to_have_count(1)
    assert _cells(page, 0, "Message ID", "Sent Time", "Message Type", "Destination",
                  "Destination Number", "Segments", "Charge", "Currency") == (
        "sms-1", "2030-03-10 12:05:00 UTC", "sms_out", "United Kingdom SMS", UK, "2", "0.10",
        "USD")
    page.get_by_role("link", name="Show all 17 columns").click()
    expect(page.locator("#usage thead th")).to_have_text(SMS_COLUMNS)
    assert _cells(page, 0, "Sender ID") == (ALICE_NUMBER,)

    path = _download(page, "#download-csv", tmp_path)
    assert path.name == f"sms-usage_{usage.tid}_2030-03-04_2030-03-10.csv"
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert table[0] == SMS_COLUMNS
    assert [(r[1], r[SMS_COLUMNS.index("Charge")]) for r in table[1:]] == [("sms-1", "0.10")]
    path = _download(page, "#download-xlsx", tmp_path)
    wb = openpyxl.load_workbook(path, read_only=True)
    sheet = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    assert sheet[0] == SMS_COLUMNS and len(sheet) == 2
    assert sheet[1][SMS_COLUMNS.index("Segments")] == 2

    # a period with nothing in it
    page.locator("#custom-range").get_by_label("From").fill("2030-01-01")
    page.locator("#custom-range").get_by_label("To").fill("2030-01-31")
    page.get_by_role("button", name="Show range").click()
    expect(page).to_have_url(re.compile(r"\?kind=sms&cols=all&from=2030-01-01&to=2030-01-31$"))
    expect(page.locator("#empty")).to_have_text("No messages in this period.")
    expect(page.locator("#summary")).to_contain_text("0 messages")


def test_minute_pools_page(page: Page, server: str, usage: Voice) -> None:
    login(page, server, add_admin(usage.api, usage.tid, "user_admin"))
    page.get_by_role("link", name="Minute pools").click()
    expect(page).to_have_url(f"{server}/console/pools")
    expect(page.get_by_role("heading", name="Minute pools")).to_contain_text("2030-03")
    pool = page.locator(f'#pools tbody tr[data-pool="{DOMESTIC_POOL}"]')
    expect(pool.locator("td")).to_have_text(
        [re.compile(r"MCOPSTN1"), "US", "3000", "3", "2997", "0.1%"])
    expect(pool.get_by_role("meter")).to_have_attribute("aria-valuenow", "0.1")
    expect(page.locator("#pools thead th")).to_have_text(
        ["Pool", "Country", "Minutes total", "Used", "Left", "Used this month"])
    page.screenshot(path="/tmp/pools.png", full_page=True)

    # next month: the counter starts again; a bad month is the service's message, not a 500
    page.get_by_role("link", name="2030-04 →").click()
    expect(page).to_have_url(f"{server}/console/pools?month=2030-04")
    expect(pool.locator("td").nth(3)).to_have_text("0")
    page.locator("#month-form").get_by_label("Month").fill("2030-03")
    page.get_by_role("button", name="Show").click()
    expect(pool.locator("td").nth(3)).to_have_text("3")
    response = page.goto(f"{server}/console/pools?month=2030-13")
    assert response is not None and response.status == 422
    expect(page.get_by_role("alert")).to_have_text(
        "validation_error: month '2030-13' must be YYYY-MM with a month 01 to 12")
    expect(page.locator("#pools")).to_have_count(0)
    response = page.goto(f"{server}/console/pools?month=0000-01")  # issue 19: a year 0
    assert response is not None and response.status == 422
    expect(page.get_by_role("alert")).to_contain_text("outside the years 2000 to 2199")
