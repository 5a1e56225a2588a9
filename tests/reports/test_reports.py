"""Usage reports: PSTN and SMS usage (JSON, CSV, XLSX), periods, access, minute pools, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from typer.testing import CliRunner

from commcredits.domain.errors import DomainError
from commcredits.entrypoints.cli import app as cli
from commcredits.services import report_formats as formats
from commcredits.services import reports as rep

PSTN_COLUMNS = ["UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
                "User Display Name", "Caller ID", "Call Type", "Number Type",
                "Domestic/International", "Destination Dialed", "Destination Number",
                "Start Time", "End Time", "Duration Seconds", "Connection Fee", "Charge",
                "Currency", "Capability"]
SMS_COLUMNS = ["UsageId", "Message ID", "User Location", "AAD ObjectId", "UPN",
               "User Display Name", "Sender ID", "Message Type", "Number Type",
               "Domestic/International", "Destination", "Destination Number", "Sent Time",
               "Segments", "Charge", "Currency", "Capability"]

DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
44,United Kingdom,any,0.0200,0.0000,60
1,United States,any,0.0100,0.0000,60
33,France,any,0.0300,0.0100,6
44,United Kingdom SMS,sms,0.0500,0,1
"""
ALICE_NUMBER = "+14255550100"
UK = "+442079460123"
UK_MOBILE = "+447700900123"
US = "+12125550123"
FRANCE = "+33612345678"
START = "2030-03-10T12:00:00Z"
ALICE_AAD = "8c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"  # her Entra ID object id


@dataclass
class Voice:
    api: Any
    tid: str
    switch: str
    alice_aad: str  # the GUID the exports show as AAD ObjectId

    def call(self, call_id: str, to: str, duration: int, upn: str = "alice@contoso.com",
             **extra: Any) -> dict[str, Any]:
        body = {"call_id": call_id, "tenant_id": self.tid, "call_type": "user_out",
                "from": ALICE_NUMBER, "to": to, "upn": upn, **extra}
        decision = self.api.post("/v1/calls", body, key=self.switch, expect=200).json()
        assert decision["decision"] == "allowed", decision
        return self.api.post(f"/v1/calls/{call_id}/end", {"duration_s": duration},
                             key=self.switch, expect=200).json()

    def sms(self, message_id: str, to: str, segments: int = 1, direction: str = "out",
            frm: str = ALICE_NUMBER) -> dict[str, Any]:
        body = {"message_id": message_id, "tenant_id": self.tid, "upn": "alice@contoso.com",
                "from": frm, "to": to, "direction": direction, "segments": segments}
        return self.api.post("/v1/sms", body, key=self.switch, expect=200).json()

    def report(self, name: str, key: str | None = None, expect: int | None = 200,
               **params: str) -> Any:
        query = "&".join(f"{k.rstrip('_')}={v}" for k, v in params.items())
        return self.api.get(f"/v1/tenants/{self.tid}/reports/{name}?{query}", key=key,
                            expect=expect)


def load_deck(api: Any) -> None:
    r = api.client.put("/v1/rate-decks/USD", content=DECK.encode(),
                       headers={"Authorization": f"Bearer {api.operator}",
                                "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text


def add_user(api: Any, tid: str, upn: str, skus: list[str], location: str = "US",
             **extra: Any) -> dict[str, Any]:
    body = {"upn": upn, "display_name": upn.split("@")[0].title(), "usage_location": location,
            **extra}
    user = api.post(f"/v1/tenants/{tid}/users", body, expect=201).json()
    for sku in skus:
        api.put(f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}", expect=200)
    return user


@pytest.fixture
def voice(api: Any) -> Voice:
    api.set_clock(START)
    load_deck(api)
    tid = api.tenant("US")
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTN1"):
        api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 5}, expect=201)
    alice = api.post(f"/v1/tenants/{tid}/users",
                     {"upn": "alice@contoso.com", "display_name": "Alice Liddell, \"A\"",
                      "usage_location": "US", "phone_number": ALICE_NUMBER,
                      "aad_object_id": ALICE_AAD.upper()}, expect=201).json()
    assert alice["aad_object_id"] == ALICE_AAD  # stored in its canonical form
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/alice@contoso.com/licenses/{sku}", expect=200)
    assert api.order(tid, "100.00", api.card(tid)).status_code == 201
    return Voice(api, tid, api.new_key("switch"), ALICE_AAD)


@pytest.fixture
def usage(voice: Voice) -> Voice:
    """One UK call (90 s → 2 minutes at 0.02) and one UK SMS of 2 segments (0.10)."""
    end = voice.call("call-1", UK, 90)
    assert (end["charge"], end["funding"]) == ("0.04", "credits")
    assert voice.sms("sms-1", UK_MOBILE, 2)["charge"] == "0.10"
    return voice


# -- JSON ------------------------------------------------------------------------------------
def test_pstn_json_has_the_export_columns_in_order(usage: Voice) -> None:
    r = usage.report("pstn-usage")
    assert r.headers["content-type"].startswith("application/json")
    rows = r.json()
    assert len(rows) == 1
    row = rows[0]
    # the 20 export columns in order, then what the contract lets JSON add: Uncollected
    assert list(row) == [*PSTN_COLUMNS, "Uncollected", "Original Charge"]
    assert row["UsageId"].startswith("use")
    assert row == {
        "UsageId": row["UsageId"], "Call ID": "call-1", "Conference ID": None,
        "User Location": "US", "AAD ObjectId": usage.alice_aad, "UPN": "alice@contoso.com",
        "User Display Name": "Alice Liddell, \"A\"", "Caller ID": ALICE_NUMBER,
        "Call Type": "user_out", "Number Type": row["Number Type"],
        "Domestic/International": "International", "Destination Dialed": "United Kingdom",
        "Destination Number": UK, "Start Time": "2030-03-10T12:00:00Z",
        "End Time": "2030-03-10T12:01:30Z", "Duration Seconds": 90, "Connection Fee": "0.00",
        "Charge": "0.04", "Currency": "USD", "Capability": "MCOPSTNPP", "Uncollected": "0.00",
        "Original Charge": "0.04"}
    assert row["Number Type"] in {"geographic", "any"}
    # format=json is the default; the JSON and the explicit format agree
    assert usage.report("pstn-usage", format="json").json() == rows


def test_pstn_rows_are_in_time_order_and_money_is_exact(usage: Voice) -> None:
    usage.api.set_clock("2030-03-10T13:00:00Z")
    usage.call("call-2", FRANCE, 7)  # two 6 s increments at 0.03/min + 0.01 connection fee
    usage.api.set_clock("2030-03-10T14:00:00Z")
    usage.call("call-3", US, 61)  # 2 minutes at 0.01
    rows = usage.report("pstn-usage").json()
    assert [r["Call ID"] for r in rows] == ["call-1", "call-2", "call-3"]
    assert [r["Charge"] for r in rows] == ["0.04", "0.02", "0.02"]
    assert [r["Connection Fee"] for r in rows] == ["0.00", "0.01", "0.00"]
    assert [r["Domestic/International"] for r in rows] == ["International", "International",
                                                          "Domestic"]
    for r in rows:
        assert isinstance(r["Charge"], str) and isinstance(r["Duration Seconds"], int)
    spent = sum(Decimal(r["Charge"]) for r in rows) + Decimal("0.10")  # and the SMS
    assert usage.api.credits(usage.tid)["balance"] == f"{Decimal('100.00') - spent:f}"


def test_sms_json(usage: Voice) -> None:
    usage.api.set_clock("2030-03-10T12:05:00Z")
    usage.sms("sms-2", "+14155550111", direction="in", frm="+14155550111")
    rows = usage.report("sms-usage").json()
    assert [list(r) for r in rows] == [SMS_COLUMNS, SMS_COLUMNS]
    out, inbound = rows
    assert out == {
        "UsageId": out["UsageId"], "Message ID": "sms-1", "User Location": "US",
        "AAD ObjectId": usage.alice_aad, "UPN": "alice@contoso.com",
        "User Display Name": "Alice Liddell, \"A\"", "Sender ID": ALICE_NUMBER,
        "Message Type": "sms_out", "Number Type": out["Number Type"],
        "Domestic/International": "International", "Destination": out["Destination"],
        "Destination Number": UK_MOBILE, "Sent Time": "2030-03-10T12:00:00Z", "Segments": 2,
        "Charge": "0.10", "Currency": "USD", "Capability": "MCOPSTNPP"}
    assert (inbound["Message ID"], inbound["Message Type"], inbound["Charge"],
            inbound["Segments"]) == ("sms-2", "sms_in", "0.00", 1)
    # calls are not messages and messages are not calls
    assert [r["Call ID"] for r in usage.report("pstn-usage").json()] == ["call-1"]


def test_empty_report(voice: Voice) -> None:
    assert voice.report("pstn-usage").json() == []
    assert voice.report("sms-usage").json() == []
    text = voice.report("pstn-usage", format="csv").text
    assert text == ",".join(PSTN_COLUMNS) + "\r\n"


# -- CSV -------------------------------------------------------------------------------------
def test_pstn_csv_is_rfc4180(usage: Voice) -> None:
    r = usage.report("pstn-usage", format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and ".csv" in disposition
    raw = r.content.decode("utf-8")
    assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0] == PSTN_COLUMNS
    assert len(rows) == 2
    row = dict(zip(PSTN_COLUMNS, rows[1], strict=True))
    as_json = usage.report("pstn-usage").json()[0]
    assert row == {k: "" if v is None else str(v) for k, v in as_json.items()
                   if k in PSTN_COLUMNS}  # JSON adds Uncollected; the file keeps the 20
    assert row["Charge"] == "0.04" and row["Duration Seconds"] == "90"
    assert row["User Display Name"] == 'Alice Liddell, "A"'  # quoted and escaped
    assert '"Alice Liddell, ""A"""' in raw


def test_sms_csv(usage: Voice) -> None:
    r = usage.report("sms-usage", format="csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert rows[0] == SMS_COLUMNS
    row = dict(zip(SMS_COLUMNS, rows[1], strict=True))
    assert (row["Message ID"], row["Segments"], row["Charge"]) == ("sms-1", "2", "0.10")


# -- XLSX ------------------------------------------------------------------------------------
def _sheet(content: bytes) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [tuple(row) for row in wb.worksheets[0].iter_rows(values_only=True)]


def test_pstn_xlsx(usage: Voice) -> None:
    r = usage.report("pstn-usage", format="xlsx")
    assert r.headers["content-type"] == formats.XLSX_MEDIA_TYPE
    assert ".xlsx" in r.headers["content-disposition"]
    rows = _sheet(r.content)
    assert list(rows[0]) == PSTN_COLUMNS
    assert len(rows) == 2
    row = dict(zip(PSTN_COLUMNS, rows[1], strict=True))
    assert row["Call ID"] == "call-1" and row["UPN"] == "alice@contoso.com"
    assert row["Start Time"] == datetime(2030, 3, 10, 12, 0, 0)  # a real date-time, UTC
    assert row["Duration Seconds"] == 90
    assert row["Conference ID"] is None
    # money is a numeric cell written from the exact decimal text, shown with 2 places
    assert row["Charge"] == pytest.approx(0.04) and row["Currency"] == "USD"
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[0]
    assert ws.cell(1, 1).font.b
    charge = ws.cell(2, PSTN_COLUMNS.index("Charge") + 1)
    assert charge.data_type == "n" and charge.number_format == "0.00"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:  # the exact digits, not a float's
        assert "<v>0.04</v>" in z.read("xl/worksheets/sheet1.xml").decode()


def test_sms_xlsx(usage: Voice) -> None:
    rows = _sheet(usage.report("sms-usage", format="xlsx").content)
    assert list(rows[0]) == SMS_COLUMNS
    row = dict(zip(SMS_COLUMNS, rows[1], strict=True))
    assert (row["Message ID"], row["Segments"]) == ("sms-1", 2)


def test_xlsx_money_is_exact_text_beyond_excel_precision(tmp_path: Path) -> None:
    row: rep.Row = ("use_1", "c", None, "US", "u", "a@b.c", "A", "+1", "user_out", "any",
                    "Domestic", "US", "+1", "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z", 1,
                    "0.00", "1234567890123456.78", "USD", "MCOPSTNPP")
    path = tmp_path / "big.xlsx"
    assert formats.write_xlsx(path, rep.PSTN, [row]) == 1
    ws = openpyxl.load_workbook(path).worksheets[0]
    assert ws.cell(2, 18).value == "1234567890123456.78"  # text: Excel would round it
    assert ws.cell(2, 17).value == 0 and ws.cell(2, 17).data_type == "n"


# -- periods ---------------------------------------------------------------------------------
def test_days_and_ranges_filter_by_start_time(usage: Voice) -> None:
    usage.api.set_clock("2030-03-20T08:00:00Z")  # ten days after call-1
    usage.call("call-late", UK, 30)

    def ids(**params: str) -> list[str]:
        return [r["Call ID"] for r in usage.report("pstn-usage", **params).json()]

    assert ids(days="7") == ["call-late"]
    assert ids(days="28") == ["call-1", "call-late"]
    assert ids() == ["call-1", "call-late"]  # default: the last 28 days
    assert ids(from_="2030-03-10", to="2030-03-10") == ["call-1"]  # to is inclusive
    assert ids(from_="2030-03-11", to="2030-03-19") == []
    assert ids(from_="2030-03-11") == ["call-late"]  # to defaults to today
    assert ids(days="7", to="2030-03-16") == ["call-1"]
    assert ids(from_="2029-03-20", to="2030-03-20") == ["call-1", "call-late"]  # one year
    assert [r["Message ID"] for r in usage.report("sms-usage", days="7").json()] == []


@pytest.mark.parametrize("params", [
    {"from_": "2030-03-10", "to": "2030-03-01"},  # from after to
    {"from_": "2029-01-01", "to": "2030-03-01"},  # more than a year
    {"days": "5"},
    {"days": "seven"},
    {"days": "7", "from_": "2030-03-01"},
    {"from_": "2030-02-30"},
    {"from_": "10/03/2030"},
    {"to": "yesterday"},
    {"from_": "2030-3-1"},
    {"format": "pdf"},
])
def test_bad_periods_are_validation_errors(voice: Voice, params: dict[str, str]) -> None:
    for name in ("pstn-usage", "sms-usage"):
        r = voice.report(name, expect=422, **params)
        error = r.json()["error"]
        assert error["code"] == "validation_error" and error["message"]


def test_parse_period_rules() -> None:
    today = date(2030, 3, 20)
    assert rep.parse_period(today) == rep.Period(date(2030, 2, 21), today)
    assert rep.parse_period(today, days=7) == rep.Period(date(2030, 3, 14), today)
    assert rep.parse_period(today, days="28", to="2030-03-01").first == date(2030, 2, 2)
    p = rep.parse_period(today, from_="2030-03-01", to="2030-03-02")
    assert (p.start, p.end, p.days) == (datetime(2030, 3, 1, tzinfo=UTC),
                                        datetime(2030, 3, 3, tzinfo=UTC), 2)
    assert rep.parse_period(today, from_="", to="", days="") == rep.parse_period(today)
    assert rep.parse_period(today, from_="2029-03-19").days == 367  # 366 days apart: allowed
    with pytest.raises(DomainError, match="at most one year"):
        rep.parse_period(today, from_="2029-03-18")
    with pytest.raises(DomainError, match="after"):
        rep.parse_period(today, from_="2030-03-21")
    with pytest.raises(DomainError, match="7 or 28"):
        rep.parse_period(today, days=14)


def test_stream_pages_through_ties(usage: Voice) -> None:
    """Records sharing one start time are neither lost nor repeated across page ends."""
    for i in range(4):
        usage.call(f"tie-{i}", UK, 10)  # the clock does not move: same start time
    period = rep.parse_period(date(2030, 3, 10))
    db = usage.api.rt.db
    with db.uow() as uow:
        whole = [row[1] for row in rep.rows(uow, rep.PSTN, usage.tid, period)]
        assert rep.count(uow, rep.PSTN, usage.tid, period) == 5
    for page in (1, 2, 3, 5, 10):
        paged = [row[1] for row in rep.stream(db, rep.PSTN, usage.tid, period, page=page)]
        assert sorted(paged) == sorted(whole) and len(paged) == 5, page


# -- access ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["reports_reader", "billing_admin", "user_admin",
                                  "global_admin"])
def test_every_tenant_role_reads_reports(usage: Voice, role: str) -> None:
    key = usage.api.new_key(role, usage.tid)
    assert len(usage.report("pstn-usage", key=key).json()) == 1
    assert len(usage.report("sms-usage", key=key, format="csv").text.splitlines()) == 2
    usage.report("minute-pools", key=key)


def test_other_tenants_and_strangers_do_not_see_reports(usage: Voice) -> None:
    other = usage.api.tenant("US")
    stranger = usage.api.new_key("reports_reader", other)
    for name in ("pstn-usage", "sms-usage", "minute-pools"):
        r = usage.report(name, key=stranger, expect=404)
        assert r.json()["error"]["code"] == "not_found"
        assert usage.report(name, key=usage.switch, expect=403).json()["error"]["code"] == \
            "forbidden"
        r = usage.api.get(f"/v1/tenants/{usage.tid}/reports/{name}",
                          headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        usage.api.get(f"/v1/tenants/nope/reports/{name}", expect=404)
    # the other tenant's own report is empty: no leak of usage across tenants
    reader = usage.api.new_key("reports_reader", other)
    assert usage.api.get(f"/v1/tenants/{other}/reports/pstn-usage", key=reader,
                         expect=200).json() == []


# -- minute pools ----------------------------------------------------------------------------
def test_minute_pools_after_a_domestic_call(voice: Voice) -> None:
    api, tid = voice.api, voice.tid
    add_user(api, tid, "dom@contoso.com", ["MCOEV", "MCOPSTN1"])
    add_user(api, tid, "dom2@contoso.com", ["MCOEV", "MCOPSTN1"])
    r = api.post("/v1/calls", {"call_id": "dom-1", "tenant_id": tid, "call_type": "user_out",
                               "from": "+14255550199", "to": US, "upn": "dom@contoso.com"},
                 key=voice.switch, expect=200).json()
    assert (r["decision"], r["funding"]) == ("allowed", "included")
    end = api.post("/v1/calls/dom-1/end", {"duration_s": 125}, key=voice.switch,
                   expect=200).json()
    assert (end["charge"], end["included_minutes"]) == ("0.00", 3)
    pools = voice.report("minute-pools", month="2030-03").json()
    domestic = [p for p in pools if p["pool"] == "domestic:US:MCOPSTN1"]
    assert len(domestic) == 1
    assert {k: domestic[0][k] for k in ("country", "minutes_total", "minutes_used",
                                        "minutes_left")} == {
        "country": "US", "minutes_total": 6000, "minutes_used": 3, "minutes_left": 5997}
    assert voice.report("minute-pools").json() == pools  # default: this month
    april = voice.report("minute-pools", month="2030-04").json()
    assert [p["minutes_used"] for p in april if p["pool"] == "domestic:US:MCOPSTN1"] == [0]
    for bad in ("2030-13", "March", "2030-3"):
        r = voice.report("minute-pools", expect=422, month=bad)
        assert r.json()["error"]["code"] == "validation_error"
    # the included call is in the usage report too, free
    row = voice.report("pstn-usage").json()[0]
    assert (row["Call ID"], row["Charge"], row["Domestic/International"],
            row["Duration Seconds"]) == ("dom-1", "0.00", "Domestic", 125)


# -- CLI -------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_exports_csv_and_xlsx(usage: Voice, db_url: str, tmp_path: Path) -> None:
    usage.api.set_clock("2030-03-11T09:30:00Z")
    usage.call("call-2", US, 60)
    as_json = usage.report("pstn-usage").json()
    out = tmp_path / "pstn.csv"
    result = runner.invoke(cli, ["report", "pstn-usage", "--tenant", usage.tid, "--from",
                                 "2030-03-01", "--to", "2030-03-31", "--out", str(out),
                                 "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "wrote 2 rows" in result.stdout
    raw = out.read_bytes().decode("utf-8")
    assert raw.count("\r\n") == 3
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0] == PSTN_COLUMNS
    assert rows[1:] == [["" if r[c] is None else str(r[c]) for c in PSTN_COLUMNS]
                        for r in as_json]

    xlsx = tmp_path / "pstn.XLSX"
    result = runner.invoke(cli, ["report", "pstn-usage", "--tenant", usage.tid, "--from",
                                 "2030-03-11", "--to", "2030-03-11", "--out", str(xlsx),
                                 "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "wrote 1 rows" in result.stdout
    sheet = _sheet(xlsx.read_bytes())
    assert list(sheet[0]) == PSTN_COLUMNS and sheet[1][1] == "call-2"
    assert not list(tmp_path.glob(".*part"))

    sms = tmp_path / "sms.csv"
    result = runner.invoke(cli, ["report", "sms-usage", "--tenant", usage.tid, "--from",
                                 "2030-03-01", "--to", "2030-03-31", "--out", str(sms),
                                 "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "wrote 1 rows" in result.stdout
    assert sms.read_text(encoding="utf-8").splitlines()[0] == ",".join(SMS_COLUMNS)


def test_cli_errors(voice: Voice, db_url: str, tmp_path: Path) -> None:
    def run(*args: str) -> Any:
        return runner.invoke(cli, ["report", "pstn-usage", "--tenant", voice.tid, *args,
                                   "--db", db_url])

    bad_ext = run("--from", "2030-03-01", "--to", "2030-03-02", "--out",
                  str(tmp_path / "r.pdf"))
    assert bad_ext.exit_code == 2 and ".csv, .xlsx or .zip" in bad_ext.output
    backwards = run("--from", "2030-03-05", "--to", "2030-03-01", "--out",
                    str(tmp_path / "r.csv"))
    assert backwards.exit_code == 2 and "validation_error" in backwards.output
    assert not (tmp_path / "r.csv").exists()
    nobody = runner.invoke(cli, ["report", "pstn-usage", "--tenant", "tnt_nope", "--out",
                                 str(tmp_path / "r.csv"), "--db", db_url])
    assert nobody.exit_code == 1 and "not_found" in nobody.output
    empty = run("--from", "2020-01-01", "--to", "2020-01-31", "--out",
                str(tmp_path / "empty.csv"))
    assert empty.exit_code == 0 and "wrote 0 rows" in empty.stdout
    assert (tmp_path / "empty.csv").read_bytes() == (",".join(PSTN_COLUMNS) + "\r\n").encode()


# -- issue 9 item 7: export like the admin center ------------------------------------------
def test_xlsx_times_are_excel_date_times_with_an_autofilter(usage: Voice) -> None:
    r = usage.report("pstn-usage", format="xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    start = ws.cell(2, PSTN_COLUMNS.index("Start Time") + 1)
    end = ws.cell(2, PSTN_COLUMNS.index("End Time") + 1)
    assert start.is_date and start.value == datetime(2030, 3, 10, 12, 0, 0)
    assert end.value == datetime(2030, 3, 10, 12, 1, 30)  # 90 s later
    assert start.number_format == 'yyyy-mm-dd"T"hh:mm:ss"Z"'  # shown with its UTC marker
    assert ws.auto_filter.ref == f"A1:T{ws.max_row}"
    sms = openpyxl.load_workbook(io.BytesIO(usage.report("sms-usage", format="xlsx").content))
    sent = sms.worksheets[0].cell(2, SMS_COLUMNS.index("Sent Time") + 1)
    assert sent.is_date


def test_zip_export_like_the_admin_center(usage: Voice) -> None:
    usage.api.set_clock("2030-03-12T08:00:00Z")
    r = usage.report("pstn-usage", format="zip", from_="2030-03-01", to="2030-03-12")
    assert r.headers["content-type"] == "application/zip"
    assert ".zip" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["PSTN.calls.2030-03-12.csv", "parameters.json"]
        text = z.read("PSTN.calls.2030-03-12.csv").decode("utf-8")
        params = json.loads(z.read("parameters.json"))
    assert text == usage.report("pstn-usage", format="csv", from_="2030-03-01",
                                to="2030-03-12").text
    assert (params["startDate"], params["endDate"], params["tenantId"]) == (
        "2030-03-01", "2030-03-12", usage.tid)
    assert params["report"] == "pstn-usage" and params["timeZone"] == "UTC"
    sms = usage.report("sms-usage", format="zip", days="7")
    with zipfile.ZipFile(io.BytesIO(sms.content)) as z:
        assert "SMS.messages.2030-03-12.csv" in z.namelist()
        assert json.loads(z.read("parameters.json"))["days"] == 7


def test_cli_exports_zip(usage: Voice, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "pstn.zip"
    result = runner.invoke(cli, ["report", "pstn-usage", "--tenant", usage.tid, "--from",
                                 "2030-03-01", "--to", "2030-03-31", "--out", str(out),
                                 "--db", db_url])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert len(names) == 2 and "parameters.json" in names
    assert re.fullmatch(r"PSTN\.calls\.[0-9]{4}-[0-9]{2}-[0-9]{2}\.csv", sorted(names)[0])
