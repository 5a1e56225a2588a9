"""``python -m bench [--quick] [--pg]``: run the benchmarks, print a table, write
``bench/results.json`` (``{"metrics": {name: {"value", "unit"}}, "machine": {...}}``).

Speed targets live here, not in the unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import batches, bulk, charging, cycles, diameter, http, instances, nats, rating
from bench.common import BACKENDS, Databases, Metric

RESULTS = Path(__file__).parent / "results.json"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "sqlalchemy": version("sqlalchemy"),
        "fastapi": version("fastapi"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(metrics: list[Metric], title: str) -> Table:
    t = Table(title=title)
    t.add_column("metric", style="cyan", no_wrap=True)
    t.add_column("value", justify="right", style="bold")
    t.add_column("unit")
    t.add_column("note", style="dim")
    for m in metrics:
        t.add_row(m.name, fmt(m.value), m.unit, m.note)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench",
        description="Run the benchmarks, print a table and write bench/results.json.")
    parser.add_argument("--quick", action="store_true",
                        help="fewer iterations (the CI smoke run)")
    parser.add_argument("--pg", action="store_true",
                        help="also run the database benchmarks on PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--only", default="",
                        help="comma-separated suites to run (rating, charging, http, diameter, "
                             "bulk, cycles, batches, instances, nats); their metrics replace "
                             "those in "
                             "bench/results.json")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    backends = list(BACKENDS) if args.pg else ["sqlite"]
    console = Console()
    dbs = Databases()
    metrics: list[Metric] = []
    began = time.perf_counter()
    try:
        for name, suite in (("rating", rating), ("charging", charging), ("http", http),
                            ("diameter", diameter), ("bulk", bulk), ("cycles", cycles),
                            ("batches", batches), ("instances", instances), ("nats", nats)):
            if only and name not in only:
                continue
            with console.status(f"running the {name} benchmarks on {', '.join(backends)}..."):
                t0 = time.perf_counter()
                metrics += suite.run(args.quick, dbs, backends)
            console.log(f"{name}: {time.perf_counter() - t0:.1f} s")
    finally:
        dbs.close()
    mode = "quick" if args.quick else "full"
    console.print(table(metrics, f"commcredits benchmarks ({mode} run, "
                                 f"{time.perf_counter() - began:.0f} s)"))
    kept = json.loads(RESULTS.read_text())["metrics"] if only and RESULTS.exists() else {}
    results = {"metrics": {**kept, **{m.name: {"value": m.value, "unit": m.unit}
                                      for m in metrics}},
               "machine": machine()}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
