"""The switches: client processes of their own that run authorize + end cycles over HTTP
against ``commcredits serve --workers N`` (also started here, as the real command).

Each client process keeps a few keep-alive connections busy with asyncio and a minimal
HTTP/1.1 writer/reader, so the load generator spends as little of the shared CPUs as it
can. Every answer is checked; the charges the clients were answered are summed per tenant
(exact Decimals) so the benchmark can prove the balances fell by exactly that much.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import httpx

from bench.charging import FROM, TO
from commcredits.entrypoints.embedded import free_port

PORT_ENV = "COMMCREDITS_BENCH_PORT"  # the port the server under test listens on
SERVER_APP = "commcredits-bench-serve"  # the server's PostgreSQL application_name


class Served(str):
    """The base URL of a server under test, with its process id."""
    pid: int


@dataclass
class Load:
    """What the clients did: cycles, authorize latencies (ms), charges answered per tenant,
    and the wall-clock span from the first switch's start to the last one's end (a client
    process that started late widens it instead of being counted in a window it missed)."""
    cycles: int = 0
    first: float = float("inf")
    last: float = 0.0
    authorize_ms: list[float] = field(default_factory=list)
    charged: dict[str, Decimal] = field(default_factory=dict)
    cpu_s: float = 0.0  # what the client processes themselves used (os.times)
    server_cpu_s: float = 0.0  # the server's processes over the window (bench.cpu)
    pg_cpu_s: float = 0.0  # PostgreSQL's, for the server's backends and its own processes
    batches: tuple[float, float] = (0.0, 0.0)  # (batches, requests) of the charging engine

    @property
    def seconds(self) -> float:
        return max(0.0, self.last - self.first)

    def merge(self, other: Load) -> None:
        self.cycles += other.cycles
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        self.authorize_ms += other.authorize_ms
        self.cpu_s += other.cpu_s
        for tenant, amount in other.charged.items():
            self.charged[tenant] = self.charged.get(tenant, Decimal(0)) + amount

    @property
    def per_s(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


def _server_log() -> IO[bytes]:
    """Where the servers under test write their log: ``var/bench-serve.log`` (appended), so
    that an answer the clients refuse can be traced to its cause."""
    path = Path(__file__).resolve().parent.parent / "var" / "bench-serve.log"
    path.parent.mkdir(exist_ok=True)
    return path.open("ab")


@contextmanager
def serving(url: str, workers: int, port: int | None = None) -> Iterator[Served]:
    """``commcredits serve --workers N --no-jobs`` in its own process group; the base URL
    (with the server's pid). The port: ``port``, else ``COMMCREDITS_BENCH_PORT``, else a
    free one. Its database connections name themselves :data:`SERVER_APP`."""
    port = port or int(os.environ.get(PORT_ENV) or free_port())
    named = f"{url}{'&' if '?' in url else '?'}application_name={SERVER_APP}"
    with _server_log() as log:  # the server keeps its own copy of the file
        server = subprocess.Popen(
            [sys.executable, "-m", "commcredits.entrypoints.cli", "serve", "--workers",
             str(workers), "--port", str(port), "--db", named, "--no-jobs"],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "COMMCREDITS_MANUAL_CLOCK": "0",
                 "COMMCREDITS_SECRET_KEY": secrets.token_hex(32)})
    base = Served(f"http://127.0.0.1:{port}")
    base.pid = server.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"commcredits serve did not start on port {port}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes,
                    path: str, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    writer.write(b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), head, len(body), body))
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    data = await reader.readexactly(length)
    return int(status_line.split()[1]), json.loads(data)


async def _switch(host: str, port: int, key: str, name: str, tenants: list[str],
                  upns: list[str], start_at: float, seconds: float, seed: int) -> Load:
    """One switch on one keep-alive connection: authorize + end until the time is up."""
    rng = random.Random(seed)
    load = Load()
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"Host: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\n").encode()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    load.first = time.time()
    stop = load.first + seconds
    try:
        while time.time() < stop:
            tenant = tenants[rng.randrange(len(tenants))]
            call_id = f"{name}-{load.cycles}"
            t0 = time.perf_counter()
            status, answer = await _exchange(reader, writer, head, "/v1/calls", {
                "call_id": call_id, "tenant_id": tenant, "call_type": "user_out",
                "from": FROM, "to": TO, "upn": upns[rng.randrange(len(upns))]})
            load.authorize_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200 or answer.get("decision") != "allowed":
                raise SystemExit(f"POST /v1/calls answered {status}: {answer}")
            status, answer = await _exchange(reader, writer, head, "/v1/calls/end", {
                "call_id": call_id, "duration_s": rng.randint(1, 280)})
            if status != 200:
                raise SystemExit(f"POST /v1/calls/end answered {status}: {answer}")
            charge = Decimal(str(answer["charge"]))
            load.charged[tenant] = load.charged.get(tenant, Decimal(0)) + charge
            load.cycles += 1
    finally:
        writer.close()
    load.last = time.time()
    return load


def _process(base: str, key: str, name: str, connections: int, tenants: list[str],
             upns: list[str], start_at: float, seconds: float) -> Load:
    """One client process running ``connections`` switches."""
    host, port = base.removeprefix("http://").split(":")

    async def main() -> Load:
        loads = await asyncio.gather(*(
            _switch(host, int(port), key, f"{name}s{i}", tenants, upns, start_at, seconds,
                    zlib.crc32(f"{name}-{i}".encode())) for i in range(connections)))
        total = Load()
        for one in loads:
            total.merge(one)
        return total

    before = os.times()
    load = asyncio.run(main())
    after = os.times()
    load.cpu_s = (after.user - before.user) + (after.system - before.system)
    return load


def run_load(base: str | list[str], key: str, tenants: list[str], upns: list[str], *,
             clients: int, processes: int, seconds: float, tag: str) -> Load:
    """``clients`` switches spread over ``processes`` client processes, all starting together.
    With several base URLs (instances behind a balancer) the processes take them in turn."""
    bases = [base] if isinstance(base, str) else base
    per = [clients // processes + (1 if i < clients % processes else 0)
           for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3 + processes * 0.5  # the client processes start meanwhile
    total = Load()
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [pool.submit(_process, bases[i % len(bases)], key, f"{tag}p{i}", n, tenants,
                               upns, start_at, seconds) for i, n in enumerate(per) if n]
        for f in futures:
            total.merge(f.result())
    return total
