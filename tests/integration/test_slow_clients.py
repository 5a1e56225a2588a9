"""One client cannot make ``serve`` refuse everyone (issue 8, item 4): idle, slowloris and
slow-body connections are closed by the server within the configured time."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time

import httpx
import pytest

from commcredits.entrypoints.embedded import free_port
from tests.integration.test_crash_payments import CLI


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset)."""
    sock.settimeout(0.05)
    try:
        while sock.recv(4096):  # an answer the server sent before closing is skipped
            pass
    except TimeoutError:
        return False
    except OSError:
        return True  # reset
    return True  # EOF


@pytest.mark.parametrize("workers", [1, 2])
def test_idle_slowloris_and_slow_body_connections_are_closed(tmp_path, workers):
    """With ``--workers 2`` the worker processes import the protocol class by name: they must
    still use ``COMMCREDITS_REQUEST_TIMEOUT_S``, not a built-in default."""
    env = {**os.environ, "COMMCREDITS_DB": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "COMMCREDITS_MANUAL_CLOCK": "true", "COMMCREDITS_REQUEST_TIMEOUT_S": "2",
           "COMMCREDITS_KEEP_ALIVE_S": "1"}
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--no-jobs",
                             "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    socks: dict[str, list[socket.socket]] = {"idle": [], "slowloris": [], "slow_body": [],
                                             "kept_alive": []}
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)

        def connect(kind: str, first: bytes = b"") -> socket.socket:
            s = socket.create_connection(("127.0.0.1", port))
            if first:
                s.sendall(first)
            socks[kind].append(s)
            return s
        for _ in range(20):
            connect("idle")
            connect("slowloris", b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            connect("slow_body", b"POST /v1/tenants HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        kept = connect("kept_alive", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # keep dribbling: each byte resets nothing
            for s in socks["slowloris"]:
                with contextlib.suppress(OSError):
                    s.sendall(b"X")
            for s in socks["slow_body"]:
                with contextlib.suppress(OSError):
                    s.sendall(b" ")
            time.sleep(0.25)
        time.sleep(1.0)
        still_open = {kind: sum(not _closed(s) for s in group) for kind, group in socks.items()}
        assert still_open == {"idle": 0, "slowloris": 0, "slow_body": 0, "kept_alive": 0}
        # and the server still answers everyone else
        assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    finally:
        for group in socks.values():
            for s in group:
                s.close()
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_the_default_secret_outside_test_mode(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMCREDITS_")}
    env["COMMCREDITS_DB"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    r = subprocess.run([*CLI, "serve", "--port", str(free_port())], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "COMMCREDITS_SECRET_KEY" in r.stderr


def test_a_crowd_of_slow_connections_from_one_address_cannot_refuse_the_switch(tmp_path):
    """Hundreds of connections from one address that send half a request head and trickle
    the rest: beyond the per-address cap they are closed at once, the rest do not count
    against the capacity real requests need, and the switch (another address) is answered
    throughout (it used to get 503 once the slow connections filled limit_concurrency)."""
    env = {**os.environ, "COMMCREDITS_DB": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "COMMCREDITS_MANUAL_CLOCK": "true", "COMMCREDITS_REQUEST_TIMEOUT_S": "20",
           "COMMCREDITS_LIMIT_CONCURRENCY": "40",
           "COMMCREDITS_MAX_CONNECTIONS_PER_CLIENT": "30"}
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--no-jobs"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    crowd: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        for _ in range(120):  # from 127.0.0.2: another client address on the loopback
            s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            s.sendall(b"POST /v1/calls HTTP/1.1\r\nHost: x\r\n")
            crowd.append(s)
        time.sleep(0.5)
        for s in crowd:
            with contextlib.suppress(OSError):
                s.sendall(b"X")  # still trickling
        time.sleep(0.3)
        open_ = sum(not _closed(s) for s in crowd)
        assert open_ == 30  # the cap: the others were closed at once
        for _ in range(20):  # more requests than limit_concurrency minus the crowd allows
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    finally:
        for s in crowd:
            s.close()
        proc.terminate()
        proc.wait(10)
