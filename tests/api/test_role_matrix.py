"""The role matrix, generated from the route table (the OpenAPI paths): every tenant route,
every role, own and another tenant. A tenant key never learns anything about another
tenant (404, or 422 for a body that is refused before anything is looked up), the switch key
never reaches tenant routes, a reports reader never writes, and nothing answers 5xx."""

from __future__ import annotations

import re

import pytest

from commcredits.entrypoints.api.app import create_app

ROLES = ["global_admin", "billing_admin", "user_admin", "reports_reader"]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _tenant_routes() -> list[tuple[str, str]]:
    from commcredits.config import Settings
    app = create_app(Settings(db="sqlite://", manual_clock=True))
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            if path.startswith("/v1/tenants/{tid}") for method in ops]


ROUTES = _tenant_routes()


def _fill(path: str, tid: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: tid if m.group(1) == "tid" else "x", path)


def test_the_table_has_the_routes():
    assert ("POST", "/v1/tenants/{tid}/credits/orders") in ROUTES
    assert ("POST", "/v1/tenants/{tid}/subscriptions") in ROUTES
    assert len(ROUTES) > 20


def test_every_route_every_role_every_tenant(api):
    own, other = api.tenant(), api.tenant()
    keys = {role: api.new_key(role, own) for role in ROLES}
    switch = api.new_key("switch")
    problems = []
    for method, path in ROUTES:
        for role, key in keys.items():
            theirs = api.call(method, _fill(path, other), {}, key=key).status_code
            if theirs not in {404, 422}:
                problems.append((role, method, path, "other tenant", theirs))
            mine = api.call(method, _fill(path, own), {}, key=key).status_code
            if mine >= 500 or mine == 401:
                problems.append((role, method, path, "own tenant", mine))
            if role == "reports_reader" and method in WRITES and mine not in {403, 422}:
                problems.append((role, method, path, "reader writes", mine))
        status = api.call(method, _fill(path, own), {}, key=switch).status_code
        if status not in {403, 422}:
            problems.append(("switch", method, path, "tenant route", status))
    assert problems == []


@pytest.mark.parametrize("role", ROLES)
def test_no_tenant_role_adds_seats(api, role):
    tid = api.tenant()
    r = api.post(f"/v1/tenants/{tid}/subscriptions", {"sku": "MCOEV", "quantity": 1},
                 key=api.new_key(role, tid))
    assert r.status_code == 403
