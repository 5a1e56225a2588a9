"""Reports from a real streaming read replica (issue 11 §3).

``scripts/replica`` makes (or starts) a PostgreSQL 15 standby of the local server on
127.0.0.1:5433 (``./scripts/test`` runs it; so does this module if the replica is not
answering). The app gets ``COMMCREDITS_DB_REPLICA``; the tests prove which server answered
by pausing the standby's replay: a call settled on the primary meanwhile is missing from the
report until replay resumes. A stopped replica falls back to the primary with a warning.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commcredits.adapters.db.migrate import upgrade
from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from tests.api.voice import UK, make_voice
from tests.conftest import PG_SERVER, Api

ROOT = Path(__file__).resolve().parents[2]
REPLICA_SERVER = os.environ.get("COMMCREDITS_TEST_PG_REPLICA",
                                "postgresql+psycopg://postgres@127.0.0.1:5433/test")
REPORT = "/reports/pstn-usage?days=28"


def _replica_script(*args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "replica"), *args], check=True, timeout=120,
                   capture_output=True)


def _until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def replica_engine() -> Iterator[sa.Engine]:
    _replica_script()  # idempotent: makes or starts the standby; a failure fails the tests
    engine = sa.create_engine(REPLICA_SERVER, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar() is True
    yield engine
    engine.dispose()


@pytest.fixture
def replicated(replica_engine: sa.Engine) -> Iterator[tuple[Api, str]]:
    """An app on a fresh schema of the primary, reading reports from the standby."""
    schema = f"cc_replica_{secrets.token_hex(4)}"
    primary = sa.create_engine(PG_SERVER)
    with primary.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    options = f"?options=-csearch_path%3D{schema}"
    upgrade(PG_SERVER + options)
    rt = Runtime.from_settings(Settings(db=PG_SERVER + options,
                                        db_replica=REPLICA_SERVER + options,
                                        manual_clock=True, smtp_url=None))
    try:
        with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
            yield Api(client, rt), schema
    finally:
        with replica_engine.connect() as conn:  # never leave the standby paused
            conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
        rt.db.engine.dispose()
        rt.report_reads().dispose()
        with primary.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        primary.dispose()


def _on_replica(engine: sa.Engine, schema: str, call_id: str) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            f"SELECT count(*) FROM {schema}.usage_records WHERE ref = :ref"), {"ref": call_id}
        ).scalar())


def _as_of(r: Any) -> datetime:
    return datetime.fromisoformat(r.headers["x-data-as-of"].replace("Z", "+00:00"))


def _calls(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    return {row["Call ID"] for row in r.json()}


def test_reports_come_from_the_replica_as_of_its_replay(
        replicated: tuple[Api, str], replica_engine: sa.Engine) -> None:
    api, schema = replicated
    voice = make_voice(api)
    voice.fund("50.00")
    before_first = datetime.now(UTC).replace(microsecond=0)
    voice.call("rep-1", UK)
    voice.end("rep-1", 60)
    _until(lambda: _on_replica(replica_engine, schema, "rep-1"), "rep-1 is replayed")
    url = f"/v1/tenants/{voice.tid}{REPORT}"
    r = api.get(url)
    assert _calls(r) == {"rep-1"}
    assert r.headers["x-data-source"] == "replica"
    assert _as_of(r) >= before_first
    assert "warning" not in r.headers

    # stop the standby's replay: what the primary commits now is not in the report
    with replica_engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_wal_replay_pause()"))
        _until(lambda: conn.execute(sa.text("SELECT pg_get_wal_replay_pause_state()"))
               .scalar() == "paused", "replay is paused")
    paused_at = datetime.now(UTC)
    voice.call("rep-2", UK)
    voice.end("rep-2", 120)
    with api.rt.db.uow() as uow:  # the primary has it
        assert uow.conn.execute(sa.text("SELECT count(*) FROM usage_records")).scalar() == 2
    r = api.get(url)
    assert _calls(r) == {"rep-1"}, "the report was not read from the replica"
    assert r.headers["x-data-source"] == "replica"
    assert _as_of(r) <= paused_at

    # the file exports say the same in their metadata
    z = api.get(f"/v1/tenants/{voice.tid}/reports/pstn-usage?days=28&format=zip")
    assert z.status_code == 200
    parameters = json.loads(zipfile.ZipFile(io.BytesIO(z.content)).read("parameters.json"))
    assert parameters["dataAsOf"] == z.headers["x-data-as-of"]
    assert datetime.fromisoformat(parameters["dataAsOf"].replace("Z", "+00:00")) <= paused_at

    with replica_engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
    _until(lambda: _on_replica(replica_engine, schema, "rep-2"), "rep-2 is replayed")
    r = api.get(url)
    assert _calls(r) == {"rep-1", "rep-2"}
    assert _as_of(r) >= paused_at.replace(microsecond=0)
    pools = api.get(f"/v1/tenants/{voice.tid}/reports/minute-pools")
    assert pools.status_code == 200 and pools.headers["x-data-source"] == "replica"


def _fallbacks(api: Api) -> float:
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith("commcredits_replica_fallbacks_total "):
            return float(line.split()[1])
    return 0.0


def test_a_stopped_replica_falls_back_to_the_primary_with_a_warning(
        replicated: tuple[Api, str], replica_engine: sa.Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    api, schema = replicated
    voice = make_voice(api)
    voice.fund("50.00")
    voice.call("rep-3", UK)
    voice.end("rep-3", 60)
    url = f"/v1/tenants/{voice.tid}{REPORT}"
    counted = _fallbacks(api)
    _replica_script("stop")
    try:
        with caplog.at_level(logging.WARNING, logger="commcredits.adapters.db.replica"):
            r = api.get(url)
        assert _calls(r) == {"rep-3"}
        assert r.headers["x-data-source"] == "primary"
        assert "read replica unavailable" in r.headers["warning"]
        assert abs((_as_of(r) - datetime.now(UTC)).total_seconds()) < 60
        assert any("read replica unavailable" in m for m in caplog.messages)
        assert _fallbacks(api) == counted + 1
    finally:
        _replica_script("start")
    _until(lambda: _on_replica(replica_engine, schema, "rep-3"), "the restarted replica "
           "replays rep-3", timeout=60)
    r = api.get(url)
    assert _calls(r) == {"rep-3"}
    assert r.headers["x-data-source"] == "replica"


def test_without_a_replica_reports_say_the_primary_and_its_time(api: Api) -> None:
    tid = api.tenant()
    r = api.get(f"/v1/tenants/{tid}{REPORT}")
    assert r.status_code == 200 and r.json() == []
    assert r.headers["x-data-source"] == "primary"
    assert "warning" not in r.headers
    assert abs((_as_of(r) - datetime.now(UTC)).total_seconds()) < 60
