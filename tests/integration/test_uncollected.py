"""Usage never vanishes (issue 8, item 8): a CDR for a call credits could not pay is recorded
with its charge as ``uncollected``, not dropped as ``blocked``."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from commcredits.services.ledger import verify
from tests.api.voice import UK, US, make_voice


def test_cdrs_after_credits_run_out_are_recorded_uncollected(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("0.05")
    before = REGISTRY.get_sample_value("commcredits_uncollected_minor_units_total",
                                       {"currency": "USD"}) or 0.0
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,120\n"
        f"b,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T10:00:00Z,300\n")
    r = CliRunner().invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "2 rated, 0 duplicate, 0 blocked" in r.output
    assert voice.credits()["balance"] == "0.00"
    with api.rt.db.uow() as uow:
        rows = uow.conn.exec_driver_sql(
            "SELECT ref, charge, uncollected FROM usage_records ORDER BY ref").all()
        assert verify(uow)[1] == []
    scale = Decimal(10) ** 6
    got = [(ref, Decimal(c) / scale, Decimal(u) / scale) for ref, c, u in rows]
    # a: 2 min x 0.02 = 0.04 paid; b: 5 min x 0.02 = 0.10, of which 0.01 paid, 0.09 owed
    assert got == [("a", Decimal("0.04"), Decimal(0)), ("b", Decimal("0.01"), Decimal("0.09"))]
    after = REGISTRY.get_sample_value("commcredits_uncollected_minor_units_total",
                                      {"currency": "USD"})
    assert after == before + 9


def test_a_live_call_tells_what_was_uncollected(api):
    voice = make_voice(api)
    voice.fund("0.02")
    voice.call("live", UK)  # granted what 0.02 buys: one minute
    end = voice.end("live", 180)  # the switch did not cut it: 3 minutes happened
    assert (end["charge"], end["uncollected"]) == ("0.02", "0.04")
