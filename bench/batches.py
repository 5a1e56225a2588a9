"""What a charging batch costs by its size, on PostgreSQL: where a cycle's CPU goes.

The charging engine decides the requests waiting together in one transaction (two round
trips: the load, then the writes with the COMMIT). This suite drives the engine itself (no
HTTP) with batches of 1, 4, 16 and 32 authorizations, then as many ends, over 40 tenants
x 5 users, and measures the CPU of one cycle (authorize + end): the engine's thread
(``time.thread_time``) and its PostgreSQL backend (``/proc``), each by batch size. A least
squares fit of ``cost = fixed / size + per_request`` gives what a batch costs whatever its
size and what each request adds; the HTTP load's batch size (``batch_requests_mean_pg``)
then says how much of its CPU per cycle is the batches' fixed part.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from bench.charging import FROM, TO
from bench.common import Databases, Metric, runtime
from bench.cpu import _cpu_s, postgres_pids
from bench.cycles import TENANTS, seed_tenants
from commcredits.adapters.clock import SystemClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.charging.engine import ChargingEngine
from commcredits.charging.requests import Kind, Request
from commcredits.charging.requests import Settings as EngineSettings
from commcredits.services.cdrs import SYSTEM

APP = "commcredits-bench-batches"
SIZES = (1, 4, 16, 32)


@dataclass(frozen=True, slots=True)
class Cost:
    size: int
    python_ms: float  # the engine thread's CPU per cycle
    pg_ms: float  # its PostgreSQL backend's CPU per cycle

    @property
    def total_ms(self) -> float:
        return self.python_ms + self.pg_ms


def _measure(engine: ChargingEngine, url: str, ids: list[str], upns: list[str], size: int,
             cycles: int, tag: str) -> Cost:
    backends = postgres_pids(url, APP)
    pg0 = sum(_cpu_s(p) for p in backends)
    t0 = time.thread_time()
    done = 0
    while done < cycles:
        calls = [Request(Kind.AUTHORIZE, {
            "call_id": f"{tag}-{done + i}", "tenant_id": random.choice(ids),
            "call_type": "user_out", "from": FROM, "to": TO, "upn": random.choice(upns)},
            who=SYSTEM) for i in range(size)]
        engine.run(calls)
        for c in calls:
            if c.error is not None or c.result.get("decision") != "allowed":
                raise SystemExit(f"batches: a call was not allowed: {c.error or c.result}")
        engine.run([Request(Kind.END, {"call_id": c.body["call_id"], "duration_s": 61},
                            who=SYSTEM) for c in calls])
        done += size
    python_s = time.thread_time() - t0
    pg_s = sum(_cpu_s(p) for p in backends) - pg0
    return Cost(size, python_s / done * 1000, pg_s / done * 1000)


def fit(costs: list[Cost]) -> tuple[float, float]:
    """(fixed ms per batch, ms per request) of ``total = 2 * fixed / size + 2 * each``
    (a cycle is two requests, each in a batch of ``size``), least squares over 1/size."""
    xs = [2 / c.size for c in costs]
    ys = [c.total_ms for c in costs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    return slope, (my - slope * mx) / 2


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    cycles = 320 if quick else 1280
    with dbs.url("postgresql") as url, runtime(url) as rt:
        ids, upns = seed_tenants(rt, TENANTS)
        named = f"{url}{'&' if '?' in url else '?'}application_name={APP}"
        db = Database(make_engine(named), SystemClock())  # the production clock
        try:
            engine = ChargingEngine(db, EngineSettings(rt.settings.grant_slice_s))
            _measure(engine, named, ids, upns, 8, 64, "warm")
            costs = [_measure(engine, named, ids, upns, s, cycles, f"b{s}") for s in SIZES]
        finally:
            db.engine.dispose()
    fixed, each = fit(costs)
    out = [Metric(f"engine_cpu_per_cycle_batch_{c.size}_ms", c.total_ms, "ms",
                  f"authorize + end through the engine in batches of {c.size}: engine "
                  f"thread {c.python_ms:.2f}, its PostgreSQL backend {c.pg_ms:.2f}")
           for c in costs]
    out += [
        Metric("engine_batch_fixed_ms", fixed, "ms",
               "CPU a batch costs whatever its size (engine thread + backend; fit over the "
               "sizes above)"),
        Metric("engine_request_ms", each, "ms",
               "CPU each request adds to its batch (engine thread + backend)"),
    ]
    return out
