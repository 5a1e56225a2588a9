"""``kill -9`` of ``serve``'s workers in the middle of charging batches, under load: the
batch that was open rolls back, uvicorn starts the workers again, the switches retransmit
what went unanswered (the same call ids), and every call is authorized once and settled
once: one usage record each, the balance down by exactly the charges the switches were
answered, nothing left reserved, and ``ledger verify`` clean."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa

from commcredits.entrypoints.embedded import free_port
from tests.api.voice import UK_MOBILE, US, ledger_ok, make_voice
from tests.integration.test_crash_payments import CLI

APP = "commcredits-crash-test"  # the server's connections, as pg_stat_activity names them
SWITCHES = 6
CALLS = 10  # per switch


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_healthy(base: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("serve did not answer")


def _mid_batch(engine: sa.Engine, postgres: bool, db_url: str) -> bool:
    """A batch of the server is open (read, not committed). SQLite: the write lock is held."""
    if not postgres:
        lite = sqlite3.connect(sa.make_url(db_url).database or "", timeout=0,
                               isolation_level=None)
        try:
            lite.execute("BEGIN IMMEDIATE")
            lite.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:  # locked: a batch holds the database
            return True
        finally:
            lite.close()
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
            "AND state = 'idle in transaction'"), {"app": APP}).scalar())


def _send(base: str, key: str, path: str, body: dict[str, object]) -> dict[str, object]:
    """Send until answered, as a switch retransmits (same body, same call id)."""
    while True:
        try:
            r = httpx.post(f"{base}{path}", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200:
                return dict(r.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def test_kill_9_of_workers_mid_batch_loses_and_doubles_nothing(api, db_url):
    voice = make_voice(api)
    voice.fund("500.00")
    postgres = db_url.startswith("postgresql")
    url = f"{db_url}{'&' if '?' in db_url else '?'}application_name={APP}" if postgres \
        else db_url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMMCREDITS_DB": url, "COMMCREDITS_MANUAL_CLOCK": "true",
           "COMMCREDITS_BATCH_HOLD_MS": "150"}  # a batch stays open: kills land inside one
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--no-jobs",
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    charged: dict[str, Decimal] = {}
    lock = threading.Lock()

    def switch(n: int) -> None:
        for i in range(CALLS):
            call_id = f"k{n}-{i}"
            d = _send(base, voice.switch, "/v1/calls", {
                "call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out",
                "from": US, "to": UK_MOBILE, "upn": "payg@contoso.com"})
            assert d["decision"] == "allowed", d
            end = _send(base, voice.switch, f"/v1/calls/{call_id}/end", {"duration_s": 30})
            with lock:
                charged[call_id] = Decimal(str(end["charge"]))

    watch = sa.create_engine(db_url)
    try:
        _wait_healthy(base)
        switches = [threading.Thread(target=switch, args=(n,)) for n in range(SWITCHES)]
        for t in switches:
            t.start()
        kills = 0
        deadline = time.monotonic() + 60
        while kills < 3 and time.monotonic() < deadline:
            if _mid_batch(watch, postgres, db_url):
                for worker in _children(server.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker, signal.SIGKILL)
                kills += 1
                time.sleep(1.5)  # uvicorn starts the workers again
            else:
                time.sleep(0.01)
        assert kills == 3
        for t in switches:
            t.join(120)
        assert not any(t.is_alive() for t in switches)
    finally:
        server.terminate()
        server.wait(30)
        watch.dispose()

    assert len(charged) == SWITCHES * CALLS
    with api.rt.db.uow() as uow:
        calls = uow.conn.execute(sa.text("SELECT count(*), count(DISTINCT call_id) FROM calls "
                                         "WHERE status = 'ended'")).one()
        usage = uow.conn.execute(sa.text("SELECT ref, charge FROM usage_records "
                                         "WHERE kind = 'call'")).all()
    assert tuple(calls) == (SWITCHES * CALLS, SWITCHES * CALLS)
    assert sorted(r.ref for r in usage) == sorted(charged)  # settled once each
    assert {r.ref: Decimal(r.charge).scaleb(-6) for r in usage} == charged
    c = voice.credits()
    assert Decimal(c["balance"]) == Decimal("500.00") - sum(charged.values())
    assert c["reserved"] == "0.00"
    ledger_ok(api)
