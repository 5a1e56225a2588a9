"""Authorize + end over real HTTP: uvicorn on 127.0.0.1, 8 httpx client threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.charging import call_body, check_decision, check_ledger, durations, prepare
from bench.common import Databases, Metric, pg_name, runtime
from commcredits.entrypoints.embedded import serving
from commcredits.services.access import create_api_key

CLIENTS = 8


def _worker(base: str, key: str, body_of: list[dict[str, object]], lengths: list[int],
            indexes: range, start: threading.Barrier) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        start.wait()
        for i in indexes:
            body = body_of[i]
            r = client.post("/v1/calls", json=body)
            if r.status_code != 200:
                raise SystemExit(f"POST /v1/calls answered {r.status_code}: {r.text}")
            check_decision(r.json())
            r = client.post(f"/v1/calls/{body['call_id']}/end", json={"duration_s": lengths[i]})
            if r.status_code != 200:
                raise SystemExit(f"POST /v1/calls/.../end answered {r.status_code}: {r.text}")


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    calls = 200 if quick else 2000
    out = []
    for backend in backends:
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        with dbs.url(backend) as url, runtime(url) as rt:
            setup = prepare(rt)
            with rt.db.uow() as uow:
                _, key, _ = create_api_key(uow, "switch", None)
                uow.commit()
            lengths = durations(calls + 1)
            bodies = [call_body(setup, f"http-{i}") for i in range(calls + 1)]
            with serving(rt) as base:
                # one call first: imports, deck cache, connection pool
                warm = threading.Barrier(1)
                _worker(base, key, bodies, lengths, range(calls, calls + 1), warm)
                barrier = threading.Barrier(CLIENTS + 1)
                with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                    futures = [pool.submit(_worker, base, key, bodies, lengths,
                                           range(k, calls, CLIENTS), barrier)
                               for k in range(CLIENTS)]
                    barrier.wait()
                    started = time.perf_counter()
                    for f in futures:
                        f.result()
                    elapsed = time.perf_counter() - started
            check_ledger(rt, f"{label} HTTP")
        out.append(Metric(pg_name("http_authorize_end_per_s", backend), calls / elapsed,
                          "calls/s", f"{label}: POST /v1/calls + .../end via uvicorn, "
                                     f"{CLIENTS} httpx threads, {calls:,} calls"))
    return out
