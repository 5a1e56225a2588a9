"""Real-time charging through the charging engine, one call at a time: authorize + end, a
batch (one transaction) each."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bench.common import Databases, Metric, median, percentile, pg_name, runtime
from commcredits.charging.engine import ChargingEngine
from commcredits.charging.requests import Kind, Request
from commcredits.charging.requests import Settings as EngineSettings
from commcredits.domain import licensing
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import (
    credits,
    directory,
    ledger,
    payments,
    rating,
    tenants,
)

UPN = "caller@bench.example"
LICENSES = ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP")
SMALL_DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States,any,0.012,0,60
44,United Kingdom,geographic,0.024,0.01,60
447,United Kingdom Mobile,mobile,0.12,0,60
49,Germany,any,0.03,0,60
33,France,any,0.03,0,60
"""
FROM = "+14255550100"
TO = "+442079460123"  # a London geographic number: not in a US user's pool, paid by credits


@dataclass(frozen=True, slots=True)
class Setup:
    tenant_id: str
    upn: str


def prepare(rt: Runtime) -> Setup:
    """A legacy US tenant with 1,000,000.00 of credits, one user holding Phone System, the
    pay-as-you-go Calling Plan and the Communications Credits license, and a small deck."""
    with rt.db.uow() as uow:
        tenant = tenants.create_tenant(uow, "Bench Co", "US", "legacy")
        for sku in LICENSES:
            if not licensing.sku(sku).free_unlimited:  # MCOPSTNPP needs no seats
                directory.add_seats(uow, tenant.id, sku, 10)
        directory.create_user(uow, tenant.id, UPN, "Bench Caller", "US", "+14255550100")
        for sku in LICENSES:
            directory.assign_license(uow, tenant.id, UPN, sku)
        card = credits.add_card(uow, rt.gateway, tenant.id, "4242424242424242", 12, 2035)
        rating.import_deck(uow, tenant.currency, SMALL_DECK)
        uow.commit()
    # paid outside any transaction, as every order is (services.payments)
    payments.place_order(rt.db, rt.gateway, payments.Limits(Decimal(50), Decimal(1_000_000)),
                         tenant.id, "1000000.00", card["id"])
    return Setup(tenant.id, UPN)


def call_body(setup: Setup, call_id: str) -> dict[str, Any]:
    return {"call_id": call_id, "tenant_id": setup.tenant_id, "call_type": "user_out",
            "from": FROM, "to": TO, "upn": setup.upn}


def check_decision(decision: dict[str, Any]) -> None:
    if decision.get("decision") != "allowed" or decision.get("funding") != "credits":
        raise SystemExit(f"benchmark call was not allowed on credits: {decision}")


def check_ledger(rt: Runtime, label: str) -> None:
    """Fail loudly unless every balance re-derives from the ledger."""
    with rt.db.uow() as uow:
        checked, problems = ledger.verify(uow)
    if problems or checked < 1:
        listing = "\n".join(f"  {p}" for p in problems[:20])
        raise SystemExit(f"ledger.verify found {len(problems)} problem(s) after the {label} "
                         f"benchmark ({checked} tenants checked):\n{listing}")


def durations(count: int, seed: int = 42) -> list[int]:
    """Call lengths in seconds, within the first grant (no interim needed)."""
    rng = random.Random(seed)
    return [rng.randint(1, 280) for _ in range(count)]


def _one(engine: ChargingEngine, setup: Setup, call_id: str, duration_s: int) -> float:
    """Authorize and end one call through the charging engine (a batch of one each);
    returns the authorize latency in seconds."""
    from commcredits.services.cdrs import SYSTEM
    call = Request(Kind.AUTHORIZE, call_body(setup, call_id), who=SYSTEM)
    start = time.perf_counter()
    engine.run([call])
    authorized = time.perf_counter()
    check_decision(call.result)
    end = Request(Kind.END, {"call_id": call_id, "duration_s": duration_s}, who=SYSTEM)
    engine.run([end])
    if end.error is not None:
        raise SystemExit(f"benchmark call did not end: {end.error}")
    return authorized - start


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    calls = 300 if quick else 3000
    warmup = 20
    out = []
    for backend in backends:
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        with dbs.url(backend) as url, runtime(url) as rt:
            setup = prepare(rt)
            engine = ChargingEngine(rt.db, EngineSettings(rt.settings.grant_slice_s))
            lengths = durations(warmup + calls)
            for i in range(warmup):
                _one(engine, setup, f"warm-{i}", lengths[i])
            latencies = []
            start = time.perf_counter()
            for i in range(calls):
                latencies.append(_one(engine, setup, f"bench-{i}", lengths[warmup + i]))
            elapsed = time.perf_counter() - start
            check_ledger(rt, f"{label} service-layer")
        ms = [x * 1000 for x in latencies]
        out += [
            Metric(pg_name("call_authorize_end_per_s", backend), calls / elapsed, "calls/s",
                   f"{label}: authorize + end through the engine, a batch each, 1 thread, "
                   f"{calls:,} calls"),
            Metric(pg_name("call_authorize_p50_ms", backend), median(ms), "ms",
                   f"{label}: one authorization (a batch of one), median"),
            Metric(pg_name("call_authorize_p99_ms", backend), percentile(ms, 99), "ms",
                   f"{label}: one authorization (a batch of one), 99th percentile"),
        ]
    return out
