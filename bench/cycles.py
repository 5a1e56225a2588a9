"""The call hot path on PostgreSQL, each figure beside its in-run reference:

* ``http_cycles_per_s_pg``: authorize (``POST /v1/calls``) + end over HTTP against
  ``commcredits serve --workers <CPUs>``, 32 switches in client processes of their own,
  40 tenants x 5 users; ``pg_raw_cycles_per_s`` the same database work raw (``bench.rawpg``)
  in the same run; ``authorize_p99_ms_pg`` at that load.
* ``hot_tenant_cycles_per_s_pg``: all 32 switches on one tenant, beside raw on one row.
* ``workers_scaling``: the 40-tenant load with 2 server processes ÷ 1.
* ``history_flatness``: authorize p50 with a big history (usage records and ledger entries)
  ÷ with a small one.
* ``sql_statements_per_cycle_pg``: statements one authorize + end sends (BEGIN/COMMIT in).

After every load the benchmark asserts that ``commcredits ledger verify`` passes and that
each tenant's balance fell by exactly the sum of the charges its switches were answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

import sqlalchemy as sa

from bench import rawpg
from bench.bulk import seed_history
from bench.charging import LICENSES, SMALL_DECK, UPN, Setup, call_body, prepare
from bench.common import Databases, Metric, median, percentile, runtime
from bench.loadgen import Load, run_load, serving
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.domain import licensing
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import (
    access,
    charging,
    credits,
    directory,
    payments,
    rating,
    tenants,
)

TENANTS, USERS, CLIENTS = 40, 5, 32


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
                bases: list[str], seconds: float, label: str) -> Load:
    """A warm-up, then the measured load on the servers at ``bases``; then the money proof
    over every call they settled."""
    before = balances(rt, ids)
    # warm every worker (imports, caches, connection pool) before the measured window
    warm = run_load(bases, key, ids, upns, clients=8, processes=len(bases), seconds=1.5,
                    tag=f"warm{label}")
    load = run_load(bases, key, ids, upns, clients=CLIENTS, processes=4, seconds=seconds,
                    tag=label)
    warm.merge(load)
    prove_money(rt, url, ids, before, warm, label)
    return load


def _http(rt: Runtime, url: str, key: str, ids: list[str], upns: list[str], workers: int,
          seconds: float, label: str) -> Load:
    with serving(url, workers) as base:
        return proven_load(rt, url, key, ids, upns, [base], seconds, label)


def _statements(url: str, setup: Setup, cycles: int = 20) -> float:
    """SQL statements (BEGIN and COMMIT included) per service-level authorize + end, with
    the wall clock of production (the test clock would add its own read per transaction)."""
    db = Database(make_engine(url))
    try:
        return _count(db, setup, cycles)
    finally:
        db.engine.dispose()


def _count(db: Database, setup: Setup, cycles: int) -> float:
    count = 0

    def counted(*_: object) -> None:
        nonlocal count
        count += 1

    def cycle(call_id: str) -> None:
        with db.uow() as uow:
            charging.authorize_call(uow, 300, call_body(setup, call_id))
            uow.commit()
        with db.uow() as uow:
            charging.end_call(uow, call_id, 61)
            uow.commit()

    cycle("stmt-warm")
    engine = db.engine
    for name in ("before_cursor_execute", "begin", "commit"):
        sa.event.listen(engine, name, counted)
    try:
        for i in range(cycles):
            cycle(f"stmt-{i}")
    finally:
        for name in ("before_cursor_execute", "begin", "commit"):
            sa.event.remove(engine, name, counted)
    return count / cycles


def _authorize_p50(rt: Runtime, setup: Setup, calls: int, tag: str) -> float:
    slice_s = rt.settings.grant_slice_s
    ms = []
    for i in range(calls):
        t0 = time.perf_counter()
        with rt.db.uow() as uow:
            charging.authorize_call(uow, slice_s, call_body(setup, f"{tag}-{i}"))
            uow.commit()
        ms.append((time.perf_counter() - t0) * 1000)
        with rt.db.uow() as uow:
            charging.end_call(uow, f"{tag}-{i}", 61)
            uow.commit()
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
    workers = max(2, os.cpu_count() or 2)
    with dbs.url("postgresql") as url, runtime(url) as rt:
        ids, upns = seed_tenants(rt, TENANTS)
        with rt.db.uow() as uow:
            _, key, _ = access.create_api_key(uow, "switch", None)
            uow.commit()
        statements = _statements(url, Setup(ids[0], UPN.replace("caller", "user0")))
        raw = rawpg.cycles_per_s(url, TENANTS, CLIENTS, seconds)
        many = _http(rt, url, key, ids, upns, workers, seconds, "spread")
        raw_one = rawpg.cycles_per_s(url, 1, CLIENTS, seconds)
        hot = _http(rt, url, key, ids[:1], upns, workers, seconds, "hot")
        one = _http(rt, url, key, ids, upns, 1, seconds, "w1")
        two = many if workers == 2 else _http(rt, url, key, ids, upns, 2, seconds, "w2")
    small, big = (10_000, 100_000) if quick else (10_000, 1_000_000)
    p50_small, p50_big = _history(dbs, small, big, 60 if quick else 300)
    cpus = os.cpu_count()
    load = (f"{CLIENTS} switches in 4 client processes, {TENANTS} tenants x {USERS} users, "
            f"{seconds:.0f} s, {cpus} CPUs shared by server, clients and PostgreSQL")
    return [
        Metric("pg_raw_cycles_per_s", raw, "cycles/s",
               f"reference: per cycle 2 transactions of row lock + UPDATE + INSERT, "
               f"{CLIENTS} clients, {TENANTS} rows (pgbench or psycopg)"),
        Metric("http_cycles_per_s_pg", many.per_s, "cycles/s",
               f"authorize + end over HTTP, serve --workers {workers}; {load}; "
               f"{many.per_s / raw:.2f} x raw (target >= 0.35)"),
        Metric("authorize_p99_ms_pg", percentile(many.authorize_ms, 99), "ms",
               f"POST /v1/calls at that load (target <= 25); p50 "
               f"{median(many.authorize_ms):.1f} ms"),
        Metric("pg_raw_one_row_cycles_per_s", raw_one, "cycles/s",
               "reference: the raw cycle with all clients on one row"),
        Metric("hot_tenant_cycles_per_s_pg", hot.per_s, "cycles/s",
               f"all {CLIENTS} switches on one tenant; {hot.per_s / raw_one:.2f} x raw on one "
               f"row (target >= 0.35); authorize p99 "
               f"{percentile(hot.authorize_ms, 99):.0f} ms"),
        Metric("http_cycles_per_s_1_worker_pg", one.per_s, "cycles/s",
               "the 40-tenant load, serve --workers 1"),
        Metric("http_cycles_per_s_2_workers_pg", two.per_s, "cycles/s",
               "the 40-tenant load, serve --workers 2"),
        Metric("workers_scaling", two.per_s / one.per_s, "x",
               f"2 workers ÷ 1 ({cpus} CPUs, shared with the clients and PostgreSQL)"),
        Metric("history_flatness", p50_big / p50_small, "x",
               f"authorize p50 {p50_big:.2f} ms with {big:,} usage records and ledger "
               f"entries ÷ {p50_small:.2f} ms with {small:,} (target <= 1.3)"),
        Metric("sql_statements_per_cycle_pg", statements, "statements",
               "one authorize + end through the service layer, BEGIN and COMMIT included"),
    ]
