"""``commcredits cdrs import``: offline rating, idempotent by call id, all-or-nothing checks."""

from __future__ import annotations

from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.voice import UK, US, ledger_ok, make_voice

runner = CliRunner()


def test_cdrs_are_rated_once(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("10.00")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n"
        f"b,{voice.tid},user_out,{US},{US},dom@contoso.com,,2030-03-01T10:00:00Z,125\n"
        f"c,{voice.tid},user_out,{US},{UK},bare@contoso.com,,2030-03-01T11:00:00Z,60\n")
    r = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "2 rated, 0 duplicate, 1 blocked, 0 error" in r.output
    assert "no_calling_plan" in r.output
    assert voice.credits()["balance"] == "9.96"  # a: 2 min * 0.02; b: in the domestic pool
    again = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert "0 rated, 3 duplicate" in again.output
    assert voice.credits()["balance"] == "9.96"
    with api.rt.db.uow() as uow:
        rows = uow.conn.exec_driver_sql(
            "SELECT ref, start_time, duration_s, included_minutes FROM usage_records "
            "ORDER BY ref").all()
    assert [(r[0], r[2], r[3]) for r in rows] == [("a", 61, 0), ("b", 125, 3)]
    assert str(rows[0][1]).startswith("2030-03-01 09:00:00")


def test_bad_cdr_file_rates_nothing(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("10.00")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n"
        f"b,{voice.tid},user_out,{US},{UK},payg@contoso.com,,not-a-time,61\n"
        f"c,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,-5\n"
        f"a,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n")
    r = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert r.exit_code == 1
    for line in ("line 3", "line 4", "line 5"):
        assert line in r.output
    assert voice.credits()["balance"] == "10.00"


def test_a_long_import_refreshes_the_statistics_as_the_tables_grow(api, db_url, monkeypatch):
    """Foreign-key checks planned on nearly empty tables can scan a tenant's whole ledger per
    posting: rate_all analyzes the tables it fills at ANALYZE_FIRST CDRs, then at each 4x."""
    from commcredits.services import cdrs as cdr_service
    voice = make_voice(api)
    voice.fund("10.00")
    analyzed: list[bool] = []
    real = cdr_service.refresh_statistics
    monkeypatch.setattr(cdr_service, "ANALYZE_FIRST", 2)
    monkeypatch.setattr(cdr_service, "refresh_statistics",
                        lambda db: analyzed.append(real(db)) or True)
    rows = [{"call_id": f"grow-{i}", "tenant_id": voice.tid, "call_type": "user_out",
             "from": US, "to": UK, "upn": "payg@contoso.com", "organizer_upn": "",
             "start_time": f"2030-03-01T09:{i:02d}:00Z", "duration_s": "61"}
            for i in range(10)]
    results = []
    for part in range(0, 10, 2):  # as `ingest nats` calls it: a batch at a time
        results += cdr_service.rate_all(api.rt.db, cdr_service.from_rows(rows[part:part + 2]))
    assert [r.status for r in results] == ["rated"] * 10
    assert len(analyzed) == 2  # after 2 CDRs, then after 8, counted across the calls
    assert analyzed == [db_url.startswith("postgresql")] * 2  # SQLite has nothing to refresh


def test_a_cdr_keeps_its_whole_route_and_its_twin_authorize_is_answered(api, db_url, tmp_path):
    """A call rated from its CDR keeps how it was paid, the rate and the number (a re-rate
    prices the number again with another deck); a switch that sends an authorize with the
    same call id later gets the stored decision."""
    from decimal import Decimal

    import orjson
    voice = make_voice(api)
    voice.fund("10.00")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
        f"n1,{voice.tid},user_out,{US},{UK},payg@contoso.com,,2030-03-01T09:00:00Z,61\n"
        f"n2,{voice.tid},user_out,{US},{UK},bare@contoso.com,,2030-03-01T11:00:00Z,60\n")
    r = runner.invoke(cli, ["cdrs", "import", str(cdrs), "--db", db_url])
    assert "1 rated, 0 duplicate, 1 blocked, 0 error" in r.output, r.output
    with api.rt.db.uow() as uow:
        routes = dict(uow.conn.exec_driver_sql(
            "SELECT call_id, route FROM calls ORDER BY call_id").all())
        usage = uow.conn.exec_driver_sql(
            "SELECT upn, destination_number, user_location FROM usage_records").one()
    assert orjson.loads(routes["n1"])["number"]["e164"] == UK
    assert Decimal(orjson.loads(routes["n1"])["rate"]["per_minute"]) == Decimal("0.02")
    assert tuple(usage) == ("payg@contoso.com", UK, "US")
    twin = voice.call("n1", UK)
    assert (twin["decision"], twin["funding"]) == ("allowed", "credits")
    assert voice.call("n2", UK, upn="bare@contoso.com")["decision"] == "blocked"
    assert voice.credits()["balance"] == "9.96"
    ledger_ok(api)
