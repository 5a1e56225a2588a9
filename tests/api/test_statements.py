"""Monthly statements (issue 21): every line from the ledger, reconciling to the cent; a
month's closing is the next one's opening and the balance at that instant."""

from __future__ import annotations

import csv
import io
import subprocess
from decimal import Decimal

from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.voice import CHINA, TOLL_FREE, UK, US, ledger_ok, make_voice

DOMESTIC = "+12065550123"
# "OOO Romashka" in Cyrillic, with guillemets
CYRILLIC = "\u041e\u041e\u041e \u00ab\u0420\u043e\u043c\u0430\u0448\u043a\u0430\u00bb Telecom"


def _statement(api, tid, month, key=None, expect=200, fmt="json"):
    return api.get(f"/v1/tenants/{tid}/statements/{month}?format={fmt}", key=key,
                   expect=expect)


def _identity(s):
    d = {k: Decimal(v) for k, v in s.items() if isinstance(v, str) and k not in (
        "tenant_id", "tenant_name", "month", "currency")}
    usage = {k: Decimal(v) for k, v in s["usage"].items()}
    assert usage["total"] == sum(v for k, v in usage.items() if k != "total")
    assert d["opening_balance"] + d["purchases"] + d["auto_recharges"] - usage["total"] + \
        d["corrections"] - d["expired"] == d["closing_balance"]


def _month_of_usage(api, voice):
    """March 2030: an order, an auto-recharge, a call of every category, an SMS."""
    voice.fund("55.00")
    api.rt.settings.grant_slice_s = 20000
    api.put(f"/v1/tenants/{voice.tid}/credits/auto-recharge",
            {"enabled": True, "recharge_amount": "50.00", "trigger_amount": "50.00",
             "payment_method_id": voice.card}, expect=200)
    api.post(f"/v1/tenants/{voice.tid}/numbers", {"number": TOLL_FREE, "type": "toll_free"},
             expect=201)
    for call_id, to, extra, seconds in (
            ("dom", DOMESTIC, {}, 600),  # 10 min x 0.01 (pay as you go)
            ("intl", UK, {}, 300),  # 5 min x 0.02
            ("tf", TOLL_FREE, {"upn": None, "call_type": "conf_in", "frm": UK}, 120),  # 2 x 0.08
            ("conf", CHINA, {"upn": None, "call_type": "conf_out",
                             "organizer_upn": "conf@contoso.com"}, 60),  # 1 x 0.05
            ("big", UK, {}, 300 * 60)):  # 300 min x 0.02 = 6.00: below the trigger
        voice.call(call_id, to, **extra)
        voice.end(call_id, seconds)
    api.post("/v1/sms", {"message_id": "m1", "tenant_id": voice.tid, "upn": "payg@contoso.com",
                         "from": US, "to": UK, "direction": "out", "segments": 2},
             key=voice.switch, expect=200)  # 2 x 0.05


def test_a_month_reconciles_to_the_ledger_and_leads_into_the_next(api):
    voice = make_voice(api)
    _month_of_usage(api, voice)
    march = _statement(api, voice.tid, "2030-03").json()
    _identity(march)
    assert march["final"] is False  # the month is not over
    assert (march["opening_balance"], march["purchases"], march["auto_recharges"]) == \
        ("0.00", "55.00", "50.00")
    assert march["usage"] == {"domestic": "0.10", "international": "6.10", "toll_free": "0.16",
                              "conferencing": "0.05", "sms": "0.10", "total": "6.51"}
    assert march["closing_balance"] == voice.credits()["balance"] == "98.49"
    api.set_clock("2030-04-01T00:00:00Z")
    at_the_turn = voice.credits()["balance"]
    voice.call("april", UK)
    voice.end("april", 60)
    march = _statement(api, voice.tid, "2030-03").json()
    april = _statement(api, voice.tid, "2030-04").json()
    for s in (march, april):
        _identity(s)
    assert march["final"] is True and april["final"] is False
    assert march["closing_balance"] == april["opening_balance"] == at_the_turn
    assert april["usage"]["international"] == "0.02"
    assert april["closing_balance"] == voice.credits()["balance"]
    # a year on, what was left of the lots expires: the month's expiries line
    api.set_clock("2031-03-11T00:00:00Z")
    expired = _statement(api, voice.tid, "2031-03").json()
    _identity(expired)
    assert expired["opening_balance"] == april["closing_balance"]
    assert Decimal(expired["expired"]) > 0
    assert expired["closing_balance"] == voice.credits()["balance"]
    empty = _statement(api, voice.tid, "2030-02").json()
    assert (empty["opening_balance"], empty["closing_balance"], empty["transactions"]) == \
        ("0.00", "0.00", 0)
    ledger_ok(api)


def test_csv_and_pdf_say_what_the_json_says(api, tmp_path):
    tid = api.tenant("RU", name=CYRILLIC)
    voice = make_voice(api)
    voice.fund("5.00")
    ea = api.post(f"/v1/tenants/{voice.tid}/payment-methods",
                  {"type": "enterprise_agreement", "agreement_number": "EA-7731"},
                  expect=201).json()["id"]
    api.order(voice.tid, "3.00", ea, po_number="PO-4411")
    voice.call("c", UK)
    voice.end("c", 120)
    s = _statement(api, voice.tid, "2030-03").json()
    assert [(f["kind"], f["amount"], f["payment"], f["po_number"]) for f in s["fundings"]] == [
        ("order", "5.00", "card", None), ("order", "3.00", "enterprise_agreement", "PO-4411")]
    r = _statement(api, voice.tid, "2030-03", fmt="csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row[0]: row for row in csv.reader(io.StringIO(r.text))}
    assert rows["closing_balance"][2] == s["closing_balance"]
    assert rows["usage.international"][2] == s["usage"]["international"] == "0.04"
    assert rows["purchases"][2] == "8.00"
    assert "Enterprise Agreement EA-7731, PO PO-4411" in r.text
    # Cyrillic tenant names print in the PDF
    api.rt.settings.min_order = Decimal("0.01")
    ru = _statement(api, tid, "2030-03", fmt="pdf")
    assert ru.headers["content-type"] == "application/pdf"
    assert CYRILLIC in _pdf_text(tmp_path, ru.content)
    text = _pdf_text(tmp_path, _statement(api, voice.tid, "2030-03", fmt="pdf").content)
    for key, value in (("Opening balance", s["opening_balance"]),
                       ("Purchases", s["purchases"]),
                       ("Usage: international calls", s["usage"]["international"]),
                       ("Usage: total", s["usage"]["total"]),
                       ("Closing balance", s["closing_balance"])):
        line = next(x for x in text.splitlines() if x.strip().startswith(key))
        assert line.split()[-2:] == [value, "USD"], line
    assert "Enterprise Agreement EA-7731, PO PO-4411" in text


def _pdf_text(tmp_path, content: bytes) -> str:
    path = tmp_path / "s.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_the_cli_writes_a_statement(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("5.00")
    s = _statement(api, voice.tid, "2030-03").json()
    for ext in ("json", "csv", "pdf"):
        out = tmp_path / f"march.{ext}"
        r = CliRunner().invoke(cli, ["statement", "--tenant", voice.tid, "--month", "2030-03",
                                     "--out", str(out), "--db", db_url])
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 0
    import json
    assert json.loads((tmp_path / "march.json").read_text()) == s
    r = CliRunner().invoke(cli, ["statement", "--tenant", voice.tid, "--month", "2030-13",
                                 "--out", str(tmp_path / "x.json"), "--db", db_url])
    assert r.exit_code != 0 and "month" in r.output


def test_bad_months_formats_and_callers_are_refused(api):
    voice = make_voice(api)
    for month in ("2030-13", "2030-3", "march", "1969-12"):
        r = _statement(api, voice.tid, month, expect=422)
        assert r.json()["error"]["code"] == "validation_error"
    _statement(api, voice.tid, "2030-03", fmt="xml", expect=422)
    _statement(api, voice.tid, "2030-03", key=voice.switch, expect=403)
    other = api.tenant("US")
    _statement(api, voice.tid, "2030-03", key=api.new_key("billing_admin", other), expect=404)
    assert _statement(api, voice.tid, "2030-03",
                      key=api.new_key("reports_reader", voice.tid)).json()["month"] == "2030-03"
    _statement(api, "tnt_nope", "2030-03", expect=404)


def test_a_tenant_name_that_looks_like_a_formula_is_text_in_the_csv(api):
    hostile = '=HYPERLINK("http://evil.example/x","open")'
    tid = api.tenant("US", name=hostile)
    r = _statement(api, tid, "2030-03", fmt="csv")
    rows = {row[0]: row for row in csv.reader(io.StringIO(r.text))}
    assert rows["tenant"][1] == "'" + hostile
    assert rows["opening_balance"][2] == "0.00"  # numbers stay numbers
