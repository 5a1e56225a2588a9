"""Issue 19 point 2: no CSV the service writes hands a spreadsheet a formula.

A display name ``=HYPERLINK(...)``, a message id ``=1+2``, a call id starting with ``@`` and a
UPN starting with ``=`` come out of every CSV (PSTN and SMS by API, console and CLI, the ZIP,
the audit log by API and console) with a leading ``'``; E.164 numbers and amounts unchanged.
Both databases (the PostgreSQL CSV comes from ``COPY``, rendered by the database).
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.console import post_login
from tests.reports.test_reports import ALICE_NUMBER, UK, UK_MOBILE, Voice

HOSTILE_NAME = '=HYPERLINK("http://evil.example/x","open")'
HOSTILE_UPN = "=2+5@contoso.com"
CALL_ID = "@SUM(1+1)"
MESSAGE_ID = "=1+2"
runner = CliRunner()


@pytest.fixture
def hostile(voice: Voice) -> Voice:
    api, tid = voice.api, voice.tid
    api.post(f"/v1/tenants/{tid}/users", {"upn": HOSTILE_UPN, "display_name": HOSTILE_NAME,
                                          "usage_location": "US"}, expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{tid}/users/{HOSTILE_UPN}/licenses/{sku}", expect=200)
    voice.call(CALL_ID, UK, 90, upn=HOSTILE_UPN)
    body = {"message_id": MESSAGE_ID, "tenant_id": tid, "upn": HOSTILE_UPN,
            "from": ALICE_NUMBER, "to": UK_MOBILE, "direction": "out", "segments": 1}
    assert api.post("/v1/sms", body, key=voice.switch, expect=200).json()["charge"] == "0.05"
    return voice


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def check_pstn(text: str) -> None:
    (row,) = _rows(text)
    assert row["Call ID"] == "'" + CALL_ID
    assert row["User Display Name"] == "'" + HOSTILE_NAME
    assert row["UPN"] == "'" + HOSTILE_UPN
    assert row["Caller ID"] == ALICE_NUMBER and row["Destination Number"] == UK  # E.164 kept
    assert row["Charge"] == "0.04" and row["Duration Seconds"] == "90"


def check_sms(text: str) -> None:
    (row,) = _rows(text)
    assert row["Message ID"] == "'" + MESSAGE_ID
    assert row["User Display Name"] == "'" + HOSTILE_NAME
    assert row["Sender ID"] == ALICE_NUMBER and row["Destination Number"] == UK_MOBILE
    assert row["Charge"] == "0.05" and row["Segments"] == "1"


def test_api_csv_exports_are_neutralised(hostile: Voice) -> None:
    check_pstn(hostile.report("pstn-usage", format="csv", days="7").text)
    check_sms(hostile.report("sms-usage", format="csv", days="7").text)
    # the JSON keeps the values exactly as they were sent
    (row,) = hostile.report("pstn-usage", days="7").json()
    assert row["Call ID"] == CALL_ID and row["User Display Name"] == HOSTILE_NAME


def test_api_zip_exports_are_neutralised(hostile: Voice) -> None:
    for name, check in (("pstn-usage", check_pstn), ("sms-usage", check_sms)):
        r = hostile.report(name, format="zip", days="7")
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            (member,) = [n for n in z.namelist() if n.endswith(".csv")]
            check(z.read(member).decode("utf-8"))


def test_cli_csv_and_zip_exports_are_neutralised(hostile: Voice, db_url: str,
                                                 tmp_path: Path) -> None:
    for name, check in (("pstn-usage", check_pstn), ("sms-usage", check_sms)):
        for ext in (".csv", ".zip"):
            out = tmp_path / f"{name}{ext}"
            result = runner.invoke(cli, ["report", name, "--tenant", hostile.tid, "--from",
                                         "2030-03-01", "--to", "2030-03-31", "--out",
                                         str(out), "--db", db_url])
            assert result.exit_code == 0, result.output
            if ext == ".csv":
                check(out.read_text(encoding="utf-8"))
            else:
                with zipfile.ZipFile(out) as z:
                    (member,) = [n for n in z.namelist() if n.endswith(".csv")]
                    check(z.read(member).decode("utf-8"))


def _console(api: Any, tid: str) -> None:
    api.post(f"/v1/tenants/{tid}/admins", {"email": "boss@contoso.com",
                                           "password": "pass-word-1", "role": "global_admin"},
             expect=201)
    r = post_login(api.client, "boss@contoso.com", "pass-word-1", follow_redirects=False)
    assert r.status_code == 303, r.text


def test_console_exports_and_audit_csv_are_neutralised(hostile: Voice) -> None:
    api, tid = hostile.api, hostile.tid
    _console(api, tid)
    query = "from=2030-03-01&to=2030-03-31&format=csv"
    r = api.client.get(f"/console/reports/export?kind=pstn&{query}")
    assert r.status_code == 200, r.text
    check_pstn(r.text)
    check_sms(api.client.get(f"/console/reports/export?kind=sms&{query}").text)

    for text in (api.client.get("/console/audit.csv").text,
                 api.get(f"/v1/tenants/{tid}/audit?format=csv", expect=200).text):
        targets = [row["target"] for row in _rows(text) if row["action"] == "user.create"]
        assert "'" + HOSTILE_UPN in targets and HOSTILE_UPN not in targets
