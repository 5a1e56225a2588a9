"""Usage that credits could not pay is in the usage reports (issue 8, item 8), where the
contract lets it be: each PSTN JSON row has ``Uncollected``, the totals (API, console, CLI)
sum it, and the CSV/XLSX files keep exactly the 20 PSTN columns. Every report can be
narrowed to one user, and its downloads follow the same filter (issue 10)."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from commcredits.services import reports as rep
from tests.api.console import post_login
from tests.api.voice import UK, US, make_voice

PERIOD = "from=2030-03-01&to=2030-03-02"


def _voice_with_uncollected(api, db_url, tmp_path):
    """Two users' calls on a 0.05 balance: a paid 0.04, b 0.10 of which 0.09 uncollected,
    c (dom@) paid by nothing but its pool."""
    voice = make_voice(api)
    voice.fund("0.05")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,120\n"
        f"b,{voice.tid},user_out,{US},{UK},PAYG@contoso.com,,2030-03-01T10:00:00Z,300\n"
        f"c,{voice.tid},user_out,{US},{US},dom@contoso.com,,2030-03-01T11:00:00Z,60\n")
    r = CliRunner().invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 0, r.output
    return voice


def test_uncollected_in_json_rows_and_totals_but_not_in_the_files(api, db_url, tmp_path):
    voice = _voice_with_uncollected(api, db_url, tmp_path)
    base = f"/v1/tenants/{voice.tid}/reports/pstn-usage"
    rows = api.get(f"{base}?{PERIOD}", expect=200).json()
    assert [(r["Call ID"], r["Charge"], r["Uncollected"]) for r in rows] == [
        ("a", "0.04", "0.00"), ("b", "0.01", "0.09"), ("c", "0.00", "0.00")]
    assert list(rows[0]) == [*rep.PSTN.columns, "Uncollected", "Original Charge"]
    totals = api.get(f"{base}/totals?{PERIOD}", expect=200).json()
    assert totals == {"from": "2030-03-01", "to": "2030-03-02", "user": None,
                      "currency": "USD", "records": 3, "duration_s": 480,
                      "charge": "0.05", "uncollected": "0.09"}
    header = next(csv.reader(io.StringIO(api.get(f"{base}?{PERIOD}&format=csv",
                                                 expect=200).text)))
    assert header == list(rep.PSTN.columns) and len(header) == 20
    book = openpyxl.load_workbook(io.BytesIO(api.get(f"{base}?{PERIOD}&format=xlsx",
                                                     expect=200).content), read_only=True)
    first = next(book.worksheets[0].iter_rows(values_only=True))
    assert list(first) == list(rep.PSTN.columns)
    sms = api.get(f"/v1/tenants/{voice.tid}/reports/sms-usage/totals?{PERIOD}",
                  expect=200).json()
    assert (sms["records"], sms["segments"], sms["uncollected"]) == (0, 0, "0.00")
    bad = api.get(f"{base}/totals?from=2030-03-05&to=2030-03-01")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_one_users_rows_downloads_and_totals(api, db_url, tmp_path):
    voice = _voice_with_uncollected(api, db_url, tmp_path)
    base = f"/v1/tenants/{voice.tid}/reports/pstn-usage"
    user = "user=Payg@Contoso.com"
    assert [r["Call ID"] for r in api.get(f"{base}?{PERIOD}&{user}", expect=200).json()] == \
        ["a", "b"]
    lines = list(csv.reader(io.StringIO(api.get(f"{base}?{PERIOD}&{user}&format=csv",
                                                expect=200).text)))
    assert [line[1] for line in lines[1:]] == ["a", "b"]
    book = openpyxl.load_workbook(io.BytesIO(api.get(
        f"{base}?{PERIOD}&user=dom@contoso.com&format=xlsx", expect=200).content))
    assert [row[1] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)] == \
        ["c"]
    totals = api.get(f"{base}/totals?{PERIOD}&{user}", expect=200).json()
    assert (totals["records"], totals["charge"], totals["uncollected"]) == (2, "0.05", "0.09")


def test_console_report_shows_uncollected_and_downloads_keep_the_user(api, db_url, tmp_path):
    voice = _voice_with_uncollected(api, db_url, tmp_path)
    api.post(f"/v1/tenants/{voice.tid}/admins", {"email": "boss@contoso.com",
                                                 "password": "pass-word-1",
                                                 "role": "reports_reader"}, expect=201)
    post_login(api.client, "boss@contoso.com", "pass-word-1")
    page = api.client.get(f"/console/reports?{PERIOD}&user=dom@contoso.com").text
    assert 'id="uncollected"' in page and "$0.00 uncollected" in page
    page = api.client.get(f"/console/reports?{PERIOD}").text
    assert "$0.09 uncollected" in page
    page = api.client.get(f"/console/reports?{PERIOD}&user=payg@contoso.com").text
    href = re.search(r'id="download-csv" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "user=payg%40contoso.com" in href
    lines = list(csv.reader(io.StringIO(api.client.get(href).text)))
    assert [line[1] for line in lines[1:]] == ["a", "b"]


def test_cli_report_prints_the_uncollected_total(api, db_url, tmp_path):
    voice = _voice_with_uncollected(api, db_url, tmp_path)
    out = tmp_path / "pstn.csv"
    r = CliRunner().invoke(cli, ["report", "pstn-usage", "--tenant", voice.tid, "--from",
                                 "2030-03-01", "--to", "2030-03-02", "--user",
                                 "payg@contoso.com", "--out", str(out), "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "wrote 2 rows" in r.output and "uncollected 0.09 USD" in r.output
    assert len(out.read_text().splitlines()) == 3
