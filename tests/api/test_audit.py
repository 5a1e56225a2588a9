"""The audit log: every admin action from the API, the CLI and the console, with who, role,
when, what and before → after; readable by global admins and the operator; append-only."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from commcredits.adapters.db.schema import audit_log
from commcredits.entrypoints.cli import app as cli
from tests.conftest import Api


def _actions(api: Api, tid: str, key: str | None = None) -> list[dict]:
    return api.get(f"/v1/tenants/{tid}/audit", key=key, expect=200).json()["entries"]


def test_admin_actions_are_logged_with_before_and_after(api: Api) -> None:
    tid = api.tenant("US")
    admin = api.new_key("global_admin", tid)
    card = api.card(tid)
    api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOMEETADD", "quantity": 2},
             expect=201)
    api.post(f"/v1/tenants/{tid}/users", {"upn": "ann@example.com", "display_name": "Ann",
                                          "usage_location": "US"}, key=admin, expect=201)
    api.put(f"/v1/tenants/{tid}/users/ann@example.com/licenses/MCOMEETADD", key=admin,
            expect=200)
    api.put(f"/v1/tenants/{tid}/credits/auto-recharge", {
        "enabled": True, "recharge_amount": "60.00", "trigger_amount": "10.00",
        "payment_method_id": card}, key=admin, expect=200)
    order = api.order(tid, "100.00", card).json()
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["bill@example.com"]},
            key=admin, expect=200)

    entries = _actions(api, tid, admin)
    by_action = {e["action"]: e for e in entries}
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    lic = by_action["license.assign"]
    assert (lic["target"], lic["before"], lic["after"]) == ("ann@example.com", [],
                                                           ["MCOMEETADD"])
    assert lic["actor_role"] == "global_admin" and lic["via"] == "api"
    assert by_action["order.place"]["target"] == order["id"]
    assert by_action["order.place"]["actor_role"] == "operator"
    ar = by_action["auto_recharge.set"]
    assert (ar["before"]["enabled"], ar["after"]["enabled"]) == (False, True)
    assert ar["after"]["recharge_amount"] == "60.00"
    assert by_action["billing_contacts.set"]["after"] == ["bill@example.com"]
    assert by_action["seats.add"]["after"] == {"quantity": 2}

    # paging, CSV export
    first = api.get(f"/v1/tenants/{tid}/audit?limit=2", key=admin, expect=200).json()
    assert len(first["entries"]) == 2
    rest = api.get(f"/v1/tenants/{tid}/audit?before_id={first['entries'][-1]['id']}",
                   key=admin, expect=200).json()["entries"]
    assert len(first["entries"]) + len(rest) == len(entries)
    r = api.get(f"/v1/tenants/{tid}/audit?format=csv", key=admin, expect=200)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == [e["action"] for e in reversed(entries)]
    assert r.headers["content-type"].startswith("text/csv")


def test_only_global_admins_and_the_operator_read_it(api: Api) -> None:
    tid = api.tenant("US")
    for role in ("billing_admin", "user_admin", "reports_reader"):
        r = api.get(f"/v1/tenants/{tid}/audit", key=api.new_key(role, tid))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    other = api.tenant("US")
    r = api.get(f"/v1/tenants/{tid}/audit", key=api.new_key("global_admin", other))
    assert r.status_code == 404
    bad = api.get(f"/v1/tenants/{tid}/audit?limit=0")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert api.get(f"/v1/tenants/{tid}/audit?format=xml").status_code == 422


def test_a_refused_change_leaves_no_entry(api: Api) -> None:
    tid = api.tenant("US")
    api.post(f"/v1/tenants/{tid}/users", {"upn": "bob@example.com", "display_name": "Bob",
                                          "usage_location": "US"}, expect=201)
    before = _actions(api, tid)
    r = api.put(f"/v1/tenants/{tid}/users/bob@example.com/licenses/MCOPSTNPP")
    assert r.status_code == 409
    assert _actions(api, tid) == before


def test_the_log_is_append_only(api: Api) -> None:
    tid = api.tenant("US")
    assert _actions(api, tid)
    for stmt in (sa.update(audit_log).values(actor="someone else"), sa.delete(audit_log)):
        with pytest.raises(sa.exc.DBAPIError), api.rt.db.engine.begin() as conn:
            conn.execute(stmt)
    assert _actions(api, tid)[0]["action"] == "tenant.create"


def test_cli_changes_are_logged_and_operator_admins_created(api: Api, db_url: str) -> None:
    tid = api.tenant("US")
    result = CliRunner().invoke(cli, ["admins", "create", "ops@example.com", "--operator",
                                      "--password", "long-enough-1", "--db", db_url])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["admins", "create", "ga@example.com", "--tenant", tid,
                                      "--password", "long-enough-1", "--db", db_url])
    assert result.exit_code == 0, result.output
    entry = _actions(api, tid)[0]
    assert (entry["action"], entry["via"], entry["target"]) == ("admin.add", "cli",
                                                               "ga@example.com")
    again = CliRunner().invoke(cli, ["admins", "create", "ops@example.com", "--operator",
                                     "--password", "long-enough-1", "--db", db_url])
    assert again.exit_code == 1 and "already_exists" in again.output


def test_operator_admins_are_created_by_an_operator_key_only(api: Api) -> None:
    body = {"email": "op@example.com", "password": "long-enough-1"}
    made = api.post("/v1/operator-admins", body, expect=201).json()
    assert made["role"] == "operator" and made["email"] == "op@example.com"
    assert "password" not in made
    assert api.post("/v1/operator-admins", body).status_code == 409
    tid = api.tenant("US")
    r = api.post("/v1/operator-admins", {**body, "email": "x@example.com"},
                 key=api.new_key("global_admin", tid))
    assert r.status_code == 403
    short = api.post("/v1/operator-admins", {"email": "y@example.com", "password": "short"})
    assert short.status_code == 422
