"""Shared fixtures.

Storage, API and concurrency tests run on SQLite **and** PostgreSQL (127.0.0.1:5432, user
postgres, database ``test``, a schema of their own per run). PostgreSQL being unreachable is a
test failure, never a skip: ``./scripts/test`` starts it when it is down.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commcredits.adapters.clock import ManualClock, SystemClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.migrate import upgrade
from commcredits.adapters.db.schema import metadata
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from commcredits.services.access import create_api_key

# The switch scenarios (tests/sip) start Kamailio and SIPp: ./scripts/test-sip runs them.
collect_ignore = [] if os.environ.get("COMMCREDITS_SIP_TESTS") else ["sip"]
# The Diameter Ro scenarios (tests/ro_sip) start Kamailio's ims_charging: ./scripts/test-diameter.
collect_ignore += [] if os.environ.get("COMMCREDITS_RO_TESTS") else ["ro_sip"]

PG_SERVER = os.environ.get("COMMCREDITS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(schema: str) -> str:
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    schema = f"cc_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_SERVER)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as e:  # a failure, not a skip
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER}: {e}", pytrace=False)
    upgrade(_pg_url(schema))
    yield schema
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


_TABLES = ", ".join(t.name for t in metadata.sorted_tables)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database on each backend."""
    if request.param == "sqlite":
        target = tmp_path / "commcredits.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    schema = request.getfixturevalue("pg_schema")
    url = _pg_url(schema)
    engine = sa.create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    engine.dispose()
    return url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db=db_url, manual_clock=True, smtp_url=None, min_order=50)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings, Database(make_engine(settings.db),
                                    ManualClock() if settings.manual_clock else SystemClock()),
                 TestGateway(), None)
    yield rt
    rt.db.engine.dispose()


@pytest.fixture
def second(settings: Settings) -> Iterator[Runtime]:
    """Another instance of the service on the same database: its own engine, app state and
    process caches (what a second worker or instance sees)."""
    rt = Runtime(settings, Database(make_engine(settings.db), ManualClock()), TestGateway(),
                 None)
    yield rt
    rt.db.engine.dispose()


class Api:
    """A thin test client: ``api.post("/v1/tenants", {...})`` with the operator key."""

    def __init__(self, client: TestClient, rt: Runtime) -> None:
        self.client = client
        self.rt = rt
        self.operator = self.new_key("operator")

    def new_key(self, role: str, tenant_id: str | None = None) -> str:
        with self.rt.db.uow() as uow:
            _, key, _ = create_api_key(uow, role, tenant_id)
            uow.commit()
        return key

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None,
             headers: dict[str, str] | None = None, expect: int | None = None) -> Any:
        h = {"Authorization": f"Bearer {key or self.operator}", **(headers or {})}
        r = self.client.request(method, path, json=body, headers=h)
        if expect is not None:
            assert r.status_code == expect, (r.status_code, r.text)
        return r

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    # -- common set-ups ---------------------------------------------------------------------
    def tenant(self, country: str = "US", commerce: str = "legacy", **extra: Any) -> str:
        body = {"name": f"Tenant {secrets.token_hex(3)}", "country": country,
                "commerce": commerce, **extra}
        return self.post("/v1/tenants", body, expect=201).json()["id"]

    def card(self, tid: str, number: str = "4242424242424242", exp_year: int = 2035) -> str:
        body = {"type": "card", "card_number": number, "exp_month": 12, "exp_year": exp_year}
        return self.post(f"/v1/tenants/{tid}/payment-methods", body, expect=201).json()["id"]

    def order(self, tid: str, amount: str, pm: str, **extra: Any) -> Any:
        return self.post(f"/v1/tenants/{tid}/credits/orders",
                         {"amount": amount, "payment_method_id": pm, **extra})

    def credits(self, tid: str) -> dict[str, Any]:
        return self.get(f"/v1/tenants/{tid}/credits", expect=200).json()

    def set_clock(self, now: str) -> dict[str, Any]:
        return self.post("/v1/clock", {"now": now}, expect=200).json()


@pytest.fixture
def api(runtime: Runtime) -> Iterator[Api]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        yield Api(client, runtime)
