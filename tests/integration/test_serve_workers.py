"""``commcredits serve --workers N``: N processes serve one database, and the background
jobs run in exactly one of them (the jobs lease)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import httpx

from commcredits.adapters.db.engine import make_engine
from commcredits.entrypoints.embedded import free_port
from commcredits.entrypoints.lease import JobsLease


def test_one_lease_per_database(db_url):
    first, second = make_engine(db_url), make_engine(db_url)
    a, b = JobsLease(first), JobsLease(second)
    try:
        assert a.hold() is True
        assert b.hold() is False
        assert a.hold() is True  # still held, not taken twice
        a.release()
        assert b.hold() is True
        assert a.hold() is False
    finally:
        a.release()
        b.release()
        first.dispose()
        second.dispose()


def test_serve_with_two_workers_runs_jobs_once(db_url, tmp_path):
    port = free_port()
    env = {**os.environ, "COMMCREDITS_JOBS_INTERVAL_S": "1", "COMMCREDITS_MANUAL_CLOCK": "0",
           "COMMCREDITS_SECRET_KEY": secrets.token_urlsafe(32)}  # serve refuses the default
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "commcredits.entrypoints.cli", "serve", "--workers", "2",
         "--port", str(port), "--db", db_url], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("the server did not start")
        time.sleep(4)  # several job intervals
        log.flush()
        log.seek(0)
        text = log.read()
        assert text.count("Started server process") == 2, text
        assert text.count("runs the background jobs") == 1, text
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(30)
        log.close()
