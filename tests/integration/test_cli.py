"""The command line: keys, demo, bulk licensing, jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from commcredits.services.access import authenticate

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_keys_create_prints_the_key_last(db_url, runtime):
    result = run("keys", "create", "--role", "operator", "--db", db_url)
    key = result.stdout.strip().splitlines()[-1]
    with runtime.db.uow() as uow:
        who = authenticate(uow, key)
    assert who is not None and who.role == "operator"
    bad = run("keys", "create", "--role", "global_admin", "--db", db_url, code=2)
    assert "--tenant" in bad.output


def test_demo_is_usable_and_rerunnable(db_url, api):
    first = run("demo", "--db", db_url).stdout
    keys = dict(line.split("=", 1) for line in first.splitlines() if line.startswith("COMM"))
    tid = keys["COMMCREDITS_DEMO_TENANT"]
    api.get(f"/v1/tenants/{tid}", key=keys["COMMCREDITS_GLOBAL_ADMIN_KEY"], expect=200)
    assert api.credits(tid)["balance"] == "100.00"
    second = run("demo", "--db", db_url).stdout
    assert "already loaded" in second
    assert len(api.get("/v1/tenants").json()) == 1


@pytest.fixture
def people(api):
    tid = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOMEETADD", "quantity": 10})
    for i in range(6):
        api.post(f"/v1/tenants/{tid}/users", {"upn": f"u{i}@contoso.com", "usage_location": "US"},
                 expect=201)
        if i < 4:
            api.put(f"/v1/tenants/{tid}/users/u{i}@contoso.com/licenses/MCOMEETADD", expect=200)
    return tid


def test_bulk_assign_from_file(db_url, api, people, tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("UPN,Name\nu0@contoso.com,A\nu1@contoso.com,B\nu5@contoso.com,F\n"
                     "ghost@contoso.com,G\n")
    result = run("licenses", "assign", "--tenant", people, "--sku", "MCOPSTNPP",
                 "--users-file", str(users), "--db", db_url, code=1)  # some failed
    out = result.stdout
    assert "2 assigned, 0 already_assigned, 2 error" in out
    assert "u5@contoso.com" in out and "ghost@contoso.com" in out
    held = api.get(f"/v1/tenants/{people}/users/u1@contoso.com").json()["licenses"]
    assert "MCOPSTNPP" in held


def test_bulk_assign_all_eligible(db_url, api, people):
    result = run("licenses", "assign", "--tenant", people, "--sku", "MCOPSTNPP",
                 "--all-eligible", "--db", db_url)
    assert "4 assigned, 0 already_assigned, 0 error" in result.stdout
    again = run("licenses", "assign", "--tenant", people, "--sku", "MCOPSTNPP",
                "--all-eligible", "--db", db_url)
    assert "0 assigned" in again.stdout
    run("licenses", "assign", "--tenant", people, "--sku", "MCOPSTNPP", "--db", db_url, code=2)


def test_jobs_run(db_url, api, monkeypatch):
    api.set_clock("2030-01-01T00:00:00Z")
    tid = api.tenant("US")
    api.order(tid, "55.00", api.card(tid))
    with api.rt.db.uow() as uow:  # move the shared clock without running jobs
        api.rt.db.clock.set(uow.conn, datetime(2031, 1, 2, tzinfo=UTC))
        uow.commit()
    monkeypatch.setenv("COMMCREDITS_MANUAL_CLOCK", "1")
    assert api.credits(tid)["balance"] == "55.00"
    result = run("jobs", "run", "expire", "--db", db_url)
    assert result.stdout.split("expire")[1].split()[1] == "1"
    assert api.credits(tid)["balance"] == "0.00"
    run("jobs", "run", "bogus", "--db", db_url, code=2)


def test_json_log_lines():
    import json
    import logging

    from commcredits.entrypoints.logs import JsonFormatter
    record = logging.LogRecord("commcredits.jobs", logging.INFO, __file__, 1, "ran %s",
                               ("expire",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info" and entry["message"] == "ran expire"
    assert entry["logger"] == "commcredits.jobs" and entry["time"].endswith("+00:00")
