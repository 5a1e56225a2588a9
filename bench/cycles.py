"""The call hot path on PostgreSQL, each figure beside its in-run reference:

* ``http_cycles_per_s_pg``: authorize (``POST /v1/calls``) + end over HTTP against
  ``commcredits serve --workers <CPUs ÷ 2>`` (the production setting when PostgreSQL shares
  the machine: one charging engine batches what two would split), 32 switches in client
  processes of their own,
  40 tenants x 5 users; ``pg_raw_cycles_per_s`` the same database work raw (``bench.rawpg``)
  in the same run; ``authorize_p99_ms_pg`` at that load; ``cpu_per_cycle_ms`` what a cycle
  costs the machine at that load (server, PostgreSQL and clients, from ``/proc``).
* ``hot_tenant_cycles_per_s_pg``: all 32 switches on one tenant, beside raw on one row.
* ``idle_authorize_p50_ms``: one switch, one call at a time (nobody to batch with), beside
  one raw cycle's transaction with one client.
* ``workers_scaling``: the 40-tenant load with 2 server processes ÷ 1.
* ``history_flatness``: authorize p50 with a big history (usage records and ledger entries)
  ÷ with a small one.
* ``batch_requests_mean_pg``: requests the charging engine decided per batch (one
  transaction, one commit) under the 40-tenant load.

After every load the benchmark asserts that ``commcredits ledger verify`` passes and that
each tenant's balance fell by exactly the sum of the charges its switches were answered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from decimal import Decimal

import httpx

from bench import rawpg
from bench.bulk import seed_history
from bench.charging import LICENSES, SMALL_DECK, Setup, call_body, check_decision, prepare
from bench.common import Databases, Metric, median, percentile, runtime
from bench.cpu import Meter
from bench.loadgen import SERVER_APP, Load, Served, run_load, serving
from commcredits.charging.engine import ChargingEngine
from commcredits.charging.requests import Kind, Request
from commcredits.charging.requests import Settings as EngineSettings
from commcredits.domain import licensing
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import (
    access,
    credits,
    directory,
    payments,
    rating,
    tenants,
)
from commcredits.services.cdrs import SYSTEM

TENANTS, USERS, CLIENTS = 40, 5, 32


def serving_workers(cpus: int | None = None) -> int:
    """The production ``--workers`` for a machine PostgreSQL shares: one per two CPUs. Each
    worker has its own charging engine; two engines on the load one could take split its
    batches in two, and a batch's fixed cost (two round trips, a commit) is most of what a
    small batch costs (README, Production serving)."""
    return max(1, (cpus or os.cpu_count() or 2) // 2)


def seed_tenants(rt: Runtime, count: int) -> tuple[list[str], list[str]]:
    """``count`` US tenants with 1,000,000.00 of credits and USERS users each holding Phone
    System, the pay-as-you-go Calling Plan and the Communications Credits license."""
    upns = [f"user{u}@bench.example" for u in range(USERS)]
    ids = []
    with rt.db.uow() as uow:
        rating.import_deck(uow, "USD", SMALL_DECK)
        uow.commit()
    for n in range(count):
        with rt.db.uow() as uow:
            tenant = tenants.create_tenant(uow, f"Cycles {n}", "US", "legacy")
            for sku in LICENSES:
                if not licensing.sku(sku).free_unlimited:
                    directory.add_seats(uow, tenant.id, sku, USERS)
            for upn in upns:
                directory.create_user(uow, tenant.id, upn, upn, "US", None)
                for sku in LICENSES:
                    directory.assign_license(uow, tenant.id, upn, sku)
            card = credits.add_card(uow, rt.gateway, tenant.id, "4242424242424242", 12, 2035)
            uow.commit()
        payments.place_order(rt.db, rt.gateway, payments.Limits(Decimal(50), Decimal(10**6)),
                             tenant.id, "1000000.00", card["id"])
        ids.append(tenant.id)
    return ids, upns


def balances(rt: Runtime, ids: list[str]) -> dict[str, Decimal]:
    with rt.db.uow(readonly=True) as uow:
        return {t: uow.tenants.wallet(t).balance for t in ids}


def prove_money(rt: Runtime, url: str, ids: list[str], before: dict[str, Decimal], load: Load,
           label: str) -> None:
    """The money proof after a load: ledger verify passes, and every balance fell by exactly
    what the clients were told they were charged (and nothing is left reserved)."""
    done = subprocess.run([sys.executable, "-m", "commcredits.entrypoints.cli", "ledger",
                           "verify", "--db", url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"commcredits ledger verify failed after {label}:\n{done.stdout}"
                         f"{done.stderr}")
    after = balances(rt, ids)
    for t in ids:
        fell = before[t] - after[t]
        if fell != load.charged.get(t, Decimal(0)):
            raise SystemExit(f"{label}: tenant {t} balance fell by {fell}, the clients were "
                             f"answered charges of {load.charged.get(t, Decimal(0))}")
    with rt.db.uow(readonly=True) as uow:
        held = [t for t in ids if uow.tenants.wallet(t).reserved != 0]
    if held:
        raise SystemExit(f"{label}: reservations left after every call ended: {held}")


def proven_load(rt: Runtime, url: str, key: str, ids: list[str], upns: list[str],
                bases: list[Served], seconds: float, label: str, *, clients: int = CLIENTS,
                processes: int = 4) -> Load:
    """A warm-up, then the measured load on the servers at ``bases`` (the CPU of each
    group measured over it); then the money proof over every call they settled."""
    before = balances(rt, ids)
    # warm every worker (imports, caches, connection pool) before the measured window
    warm = run_load(bases, key, ids, upns, clients=min(8, clients), processes=len(bases),
                    seconds=1.5, tag=f"warm{label}")
    meters = [Meter(b.pid, url, SERVER_APP) for b in bases]
    for m in meters:
        m.start()
    load = run_load(bases, key, ids, upns, clients=clients, processes=processes,
                    seconds=seconds, tag=label)
    used = [m.stop() for m in meters]
    load.server_cpu_s = sum(u["server"] for u in used)
    load.pg_cpu_s = max(u["postgresql"] for u in used)  # every meter sees all the backends
    counts = [_batches(b) for b in bases]
    load.batches = (sum(c[0] for c in counts), sum(c[1] for c in counts))
    warm.merge(load)
    prove_money(rt, url, ids, before, warm, label)
    return load


def _batches(base: str) -> tuple[float, float]:
    """(batches, requests) the charging engine of the server at ``base`` has decided (one
    worker's /metrics: with several workers, the one that answered)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = {name: float(value) for name, value in re.findall(
        r"^commcredits_charging_batch_requests_(count|sum) (\S+)$", text, re.M)}
    return found.get("count", 0.0), found.get("sum", 0.0)


def _http(rt: Runtime, url: str, key: str, ids: list[str], upns: list[str], workers: int,
          seconds: float, label: str) -> Load:
    with serving(url, workers) as base:
        return proven_load(rt, url, key, ids, upns, [base], seconds, label)


def _authorize_p50(rt: Runtime, setup: Setup, calls: int, tag: str) -> float:
    """Median time of one authorization through the charging engine (a batch of one)."""
    engine = ChargingEngine(rt.db, EngineSettings(rt.settings.grant_slice_s))
    ms = []
    for i in range(calls):
        call = Request(Kind.AUTHORIZE, call_body(setup, f"{tag}-{i}"), who=SYSTEM)
        t0 = time.perf_counter()
        engine.run([call])
        ms.append((time.perf_counter() - t0) * 1000)
        check_decision(call.result)
        engine.run([Request(Kind.END, {"call_id": f"{tag}-{i}", "duration_s": 61},
                            who=SYSTEM)])
    return median(ms[10:])


def _history(dbs: Databases, small: int, big: int, calls: int) -> tuple[float, float]:
    out = []
    for count in (small, big):
        with dbs.url("postgresql") as url, runtime(url) as rt:
            setup = prepare(rt)
            seed_history(url, setup.tenant_id, count)
            out.append(_authorize_p50(rt, setup, calls, f"hist{count}"))
    return out[0], out[1]


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    seconds = 4.0 if quick else 15.0
    workers = serving_workers()
    with dbs.url("postgresql") as url, runtime(url) as rt:
        ids, upns = seed_tenants(rt, TENANTS)
        with rt.db.uow() as uow:
            _, key, _ = access.create_api_key(uow, "switch", None)
            uow.commit()
        raw = rawpg.cycles_per_s(url, TENANTS, CLIENTS, seconds)
        many = _http(rt, url, key, ids, upns, workers, seconds, "spread")
        raw_one = rawpg.cycles_per_s(url, 1, CLIENTS, seconds)
        hot = _http(rt, url, key, ids[:1], upns, workers, seconds, "hot")
        raw_idle_ms = rawpg.transaction_ms(url, 1, seconds)
        with serving(url, workers) as base:
            idle = proven_load(rt, url, key, ids, upns, [base], seconds, "idle", clients=1,
                               processes=1)
        one = many if workers == 1 else _http(rt, url, key, ids, upns, 1, seconds, "w1")
        two = many if workers == 2 else _http(rt, url, key, ids, upns, 2, seconds, "w2")
    small, big = (10_000, 100_000) if quick else (10_000, 1_000_000)
    p50_small, p50_big = _history(dbs, small, big, 60 if quick else 300)
    cpus = os.cpu_count()
    load = (f"{CLIENTS} switches in 4 client processes, {TENANTS} tenants x {USERS} users, "
            f"{seconds:.0f} s, {cpus} CPUs shared by server, clients and PostgreSQL")
    cycles = max(1, many.cycles)
    server_ms, pg_ms, clients_ms = (x / cycles * 1000 for x in (
        many.server_cpu_s, many.pg_cpu_s, many.cpu_s))
    batches, decided = many.batches
    return [
        Metric("pg_raw_cycles_per_s", raw, "cycles/s",
               f"reference: per cycle 2 transactions of row lock + UPDATE + INSERT, "
               f"{CLIENTS} clients, {TENANTS} rows (pgbench or psycopg)"),
        Metric("http_cycles_per_s_pg", many.per_s, "cycles/s",
               f"authorize + end over HTTP, serve --workers {workers}; {load}; "
               f"{many.per_s / raw:.2f} x raw (target >= 0.5)"),
        Metric("authorize_p99_ms_pg", percentile(many.authorize_ms, 99), "ms",
               f"POST /v1/calls at that load (target <= 25); p50 "
               f"{median(many.authorize_ms):.1f} ms"),
        Metric("cpu_per_cycle_ms", server_ms + pg_ms + clients_ms, "ms",
               f"CPU of one cycle at that load (target <= 1.5): server {server_ms:.2f}, "
               f"PostgreSQL {pg_ms:.2f} (its backends of the server and its own processes), "
               f"clients {clients_ms:.2f}"),
        Metric("batch_requests_mean_pg", decided / batches if batches else 0.0, "requests",
               f"requests per charging batch at that load ({batches:.0f} batches of one "
               f"worker)"),
        Metric("pg_raw_one_row_cycles_per_s", raw_one, "cycles/s",
               "reference: the raw cycle with all clients on one row"),
        Metric("hot_tenant_cycles_per_s_pg", hot.per_s, "cycles/s",
               f"all {CLIENTS} switches on one tenant; {hot.per_s / raw_one:.2f} x raw on one "
               f"row (target >= 1.0, p99 <= 50 ms); authorize p99 "
               f"{percentile(hot.authorize_ms, 99):.0f} ms"),
        Metric("idle_authorize_p50_ms", median(idle.authorize_ms), "ms",
               f"one switch, one call at a time, serve --workers {workers}; reference: one "
               f"raw transaction (lock + UPDATE + INSERT, one client) {raw_idle_ms:.2f} ms; "
               f"p99 {percentile(idle.authorize_ms, 99):.1f} ms"),
        Metric("http_cycles_per_s_1_worker_pg", one.per_s, "cycles/s",
               "the 40-tenant load, serve --workers 1"),
        Metric("http_cycles_per_s_2_workers_pg", two.per_s, "cycles/s",
               "the 40-tenant load, serve --workers 2"),
        Metric("workers_scaling", two.per_s / one.per_s, "x",
               f"2 workers ÷ 1 ({cpus} CPUs, shared with the clients and PostgreSQL)"),
        Metric("history_flatness", p50_big / p50_small, "x",
               f"authorize p50 {p50_big:.2f} ms with {big:,} usage records and ledger "
               f"entries ÷ {p50_small:.2f} ms with {small:,} (target <= 1.3)"),
    ]
