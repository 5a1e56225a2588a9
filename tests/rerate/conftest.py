"""Fixtures of the re-rating tests: a second, empty database on the same backend (the world
rated with the new deck from the start), with its own service in front."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commcredits.adapters.clock import ManualClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.migrate import upgrade
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from tests.conftest import PG_SERVER, Api, _pg_url


@pytest.fixture
def other_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        target = tmp_path / "other.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    schema = f"cc_rerate_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_SERVER)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        upgrade(_pg_url(schema))
        yield _pg_url(schema)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.fixture
def other_api(other_url: str) -> Iterator[Api]:
    settings = Settings(db=other_url, manual_clock=True, smtp_url=None, min_order=50)
    rt = Runtime(settings, Database(make_engine(other_url), ManualClock()), TestGateway(), None)
    try:
        with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
            yield Api(client, rt)
    finally:
        rt.db.engine.dispose()
