"""``instances_scaling``: authorize + end cycles per second over HTTP with two ``commcredits
serve`` instances (separate commands on their own ports, one PostgreSQL database, the
clients spread over them as a load balancer would) divided by one instance, measured in the
same run (PostgreSQL). Each instance is the real command in its own process (jobs off, as
``workers_scaling``); the clients are ``bench.workers``'s. ``ledger verify`` must be clean
afterwards."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

from bench.charging import prepare
from bench.common import Databases, Metric
from bench.workers import _client
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.embedded import free_port
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import ledger
from commcredits.services.access import create_api_key

TENANTS = 8


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    import httpx
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "commcredits.entrypoints.cli", "serve", "--port", str(port),
         "--db", url, "--no-jobs"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "COMMCREDITS_MANUAL_CLOCK": "0",
             "COMMCREDITS_SECRET_KEY": secrets.token_urlsafe(32)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("commcredits serve did not start")


def _cycles(url: str, instances: int, key: str, tenants: list[str], clients: int,
            seconds: float) -> float:
    servers = [_serve(url) for _ in range(instances)]
    bases = [base for _, base in servers]
    try:
        for n, base in enumerate(bases):
            _client(base, key, tenants, f"warm{instances}-{n}", 1.0)
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 5 + clients / 2  # time for the client processes to start
        with ProcessPoolExecutor(clients, mp_context=ctx) as pool:
            counts = list(pool.map(_client, [bases[i % instances] for i in range(clients)],
                                   [key] * clients, [tenants] * clients,
                                   [f"i{instances}c{i}" for i in range(clients)],
                                   [seconds] * clients, [start_at] * clients))
        if time.time() > start_at + seconds * 1.5:
            print(f"note: the client processes ran late ({instances} instances)",
                  file=sys.stderr)
    finally:
        for server, _ in servers:
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
                raise SystemExit(f"ledger verify after the instances benchmark: {problems[:5]}")
        finally:
            rt.db.engine.dispose()
    note = (f"{clients} client processes spread over the instances, {TENANTS} tenants, "
            f"{seconds:.0f} s each, {os.cpu_count()} CPUs")
    return [
        Metric("http_cycles_per_s_1_instance_pg", one, "cycles/s",
               f"authorize + end over HTTP, one commcredits serve (reference); {note}"),
        Metric("http_cycles_per_s_2_instances_pg", two, "cycles/s",
               "the same, two commcredits serve on one database"),
        Metric("instances_scaling", two / one, "x",
               "2 instances ÷ 1 (one machine: the instances and clients share the CPUs)"),
    ]
