"""``workers_scaling``: authorize + end cycles per second over HTTP with ``commcredits serve
--workers 2`` divided by ``--workers 1`` (PostgreSQL). The server is the real command in its
own process; the switches are separate client processes; 8 tenants share the load."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

import httpx

from bench.charging import call_body, prepare
from bench.common import Databases, Metric
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.embedded import free_port
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import ledger
from commcredits.services.access import create_api_key

TENANTS = 8


def _client(base: str, key: str, tenants: list[str], name: str, seconds: float,
            start_at: float = 0.0) -> int:
    """One switch: authorize + end as fast as answers come, from the wall-clock time
    ``start_at`` (every client together, once all processes are up) for ``seconds``."""
    from bench.charging import Setup
    done = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as client:
        time.sleep(max(0.0, start_at - time.time()))
        stop = time.time() + seconds
        while time.time() < stop:
            setup = Setup(tenants[done % len(tenants)], "caller@bench.example")
            call_id = f"{name}-{done}"
            r = client.post("/v1/calls", json=call_body(setup, call_id))
            if r.status_code != 200 or r.json().get("decision") != "allowed":
                raise SystemExit(f"POST /v1/calls answered {r.status_code}: {r.text}")
            r = client.post(f"/v1/calls/{call_id}/end", json={"duration_s": 61})
            if r.status_code != 200:
                raise SystemExit(f"end answered {r.status_code}: {r.text}")
            done += 1
    return done


def _serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "commcredits.entrypoints.cli", "serve", "--workers",
         str(workers), "--port", str(port), "--db", url, "--no-jobs"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "COMMCREDITS_MANUAL_CLOCK": "0"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("commcredits serve did not start")


def _cycles(url: str, workers: int, key: str, tenants: list[str], clients: int,
            seconds: float) -> float:
    server, base = _serve(url, workers)
    try:
        _client(base, key, tenants, f"warm{workers}", 1.0)  # every worker's imports, pool
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 5 + clients / 2  # time for the client processes to start
        with ProcessPoolExecutor(clients, mp_context=ctx) as pool:
            counts = list(pool.map(_client, [base] * clients, [key] * clients,
                                   [tenants] * clients,
                                   [f"w{workers}c{i}" for i in range(clients)],
                                   [seconds] * clients, [start_at] * clients))
        if time.time() > start_at + seconds * 1.5:
            print(f"note: the client processes ran late ({workers} workers)", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)
    return sum(counts) / seconds


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    clients, seconds = (4, 4.0) if quick else (16, 15.0)
    with dbs.url("postgresql") as url:
        settings = Settings(db=url, smtp_url=None, min_order=Decimal(50))
        rt = Runtime(settings, Database(make_engine(url)), TestGateway(), None)
        try:
            tenants = [prepare(rt).tenant_id for _ in range(TENANTS)]
            with rt.db.uow() as uow:
                _, key, _ = create_api_key(uow, "switch", None)
                uow.commit()
            one = _cycles(url, 1, key, tenants, clients, seconds)
            two = _cycles(url, 2, key, tenants, clients, seconds)
            with rt.db.uow() as uow:
                _, problems = ledger.verify(uow)
            if problems:
                raise SystemExit(f"ledger verify after the workers benchmark: {problems[:5]}")
        finally:
            rt.db.engine.dispose()
    note = (f"{clients} client processes, {TENANTS} tenants, {seconds:.0f} s each, "
            f"{os.cpu_count()} CPUs")
    return [
        Metric("http_cycles_per_s_1_worker_pg", one, "cycles/s",
               f"authorize + end over HTTP, commcredits serve --workers 1; {note}"),
        Metric("http_cycles_per_s_2_workers_pg", two, "cycles/s", "the same, --workers 2"),
        Metric("workers_scaling", two / one, "x", "2 workers ÷ 1 (the clients share the CPUs)"),
    ]
