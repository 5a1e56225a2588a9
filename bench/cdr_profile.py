"""Where one ``cdrs import`` spends its CPU: ``python -m bench.cdr_profile [-n N] [--cprofile]``.

A fresh PostgreSQL schema gets the bulk bench's tenant (``bench.bulk.prepare``) and a file of
``N`` CDRs (``bench.bulk.write_cdrs``); then the import runs in this process exactly as the
CLI runs it (check the file, rate it through ``services.cdrs.rate_all``, refresh the
statistics), and prints CPU microseconds per CDR:

* per phase of the command (the check, the rating, ``ANALYZE``), this process's CPU (every
  thread, ``time.process_time``) and the PostgreSQL backends' CPU (``/proc/<pid>/stat`` of
  each connection this process opened: PostgreSQL runs on this machine);
* inside the rating, the CPU of the thread that ran each step (``time.thread_time``), steps
  nested as they are called (``rate_cdr`` holds ``authorize_call`` and ``settle``), the
  writer thread's ``send`` counted apart.

CPU time, not wall time: the machine is shared and the wall clock is noisy. ``--cprofile``
adds the 30 functions with the most own time in the rating (slower, for where, not how much).
``--cli`` instead times the real command as a process (``bench.bulk.cli``) beside a bare COPY.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import inspect
import io
import os
import pstats
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import bulk
from bench.common import Databases

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class Backends:
    """The PostgreSQL backends of the connections an engine opens, and their CPU."""

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def watch(self, engine: sa.Engine) -> None:
        @sa.event.listens_for(engine, "connect")
        def _pid(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                self.pids.add(int(cur.fetchone()[0]))

    def cpu_s(self) -> float:
        return sum(_proc_cpu_s(p) for p in self.pids)


class Steps:
    """CPU seconds of the calling thread per wrapped function (nested calls count in both)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)
        key = label or name
        cpu, calls = self.cpu, self.calls

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                cpu[key] += time.thread_time() - began
                calls[key] += 1
        static = isinstance(inspect.getattr_static(owner, name), staticmethod)
        setattr(owner, name, staticmethod(timed) if static else timed)
        self._undo.append(lambda: setattr(owner, name, staticmethod(original) if static
                                          else original))

    def undo(self) -> None:
        for u in reversed(self._undo):
            u()


def _wrap_engine(steps: Steps) -> None:
    from commcredits.adapters.db import batch_store
    from commcredits.charging import requests, work
    from commcredits.services import cdr_files, cdrs, charging, settlement
    steps.wrap(cdr_files, "_cdr", "parse a row (_cdr)")
    steps.wrap(batch_store.PgBatchStore, "load", "charging_load (read, lock, decode)")
    steps.wrap(requests, "rate_cdr", "rate_cdr (decide, in memory)")
    steps.wrap(charging, "authorize_call", "  authorize_call")
    steps.wrap(settlement, "settle", "  settle")
    steps.wrap(batch_store.PgBatchStore, "encode", "rows to parameters (encode)")
    steps.wrap(batch_store.PgBatchStore, "send", "charging_write (send, any thread)")
    steps.wrap(work.Batch, "wait", "wait for the writer")
    steps.wrap(work.Batch, "commit", "commit (last write + COMMIT)")
    steps.wrap(cdrs, "_result", "result per CDR")


@contextmanager
def _phase(out: dict[str, tuple[float, float, float]], name: str,
           backends: Backends) -> Iterator[None]:
    cpu0, pg0, wall0 = time.process_time(), backends.cpu_s(), time.perf_counter()
    yield
    out[name] = (time.process_time() - cpu0, backends.cpu_s() - pg0,
                 time.perf_counter() - wall0)


def in_process(url: str, path: Path, n: int, profile: bool) -> None:
    from commcredits.services import cdr_files, cdrs

    rt = bulk._runtime(url)
    backends = Backends()
    backends.watch(rt.db.engine)
    steps = Steps()
    _wrap_engine(steps)
    phases: dict[str, tuple[float, float, float]] = {}
    prof = cProfile.Profile() if profile else None
    counts: dict[str, int] = defaultdict(int)
    try:
        with _phase(phases, "check the file", backends):
            total = cdr_files.check_file(path)
        with _phase(phases, "rate", backends):
            if prof:
                prof.enable()
            for r in cdrs.rate_all(rt.db, cdr_files.read_file(path)):
                counts[r.status] += 1
            if prof:
                prof.disable()
        with _phase(phases, "refresh statistics", backends):
            cdrs.refresh_statistics(rt.db)
    finally:
        steps.undo()
        rt.db.engine.dispose()
    assert total == n and counts["rated"] == n, (total, dict(counts))
    us = 1e6 / n
    print(f"{n:,} CDRs, {dict(counts)}; µs per CDR (CPU)")
    print(f"{'phase':40} {'this process':>13} {'PostgreSQL':>11} {'wall':>8}")
    for name, (cpu, pg, wall) in phases.items():
        print(f"{name:40} {cpu * us:13.1f} {pg * us:11.1f} {wall * us:8.1f}")
    cpu = sum(p[0] for p in phases.values())
    pg = sum(p[1] for p in phases.values())
    wall = sum(p[2] for p in phases.values())
    print(f"{'whole import':40} {cpu * us:13.1f} {pg * us:11.1f} {wall * us:8.1f}"
          f"   ({n / wall:,.0f} CDRs/s wall, {n / (cpu + pg):,.0f} CDRs/s of CPU)")
    print(f"\n{'step (CPU of the thread that ran it)':48} {'µs/CDR':>8} {'calls':>8}")
    for name in steps.cpu:
        print(f"{name:48} {steps.cpu[name] * us:8.1f} {steps.calls[name]:8}")
    print(f"threads alive at the end: {threading.active_count()}")
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
        print(text.getvalue())


def as_command(url: str, path: Path, n: int) -> None:
    raw_s = bulk.raw_copy_cdrs(url, path)
    run = bulk.cli("cdrs", "import", str(path), url=url)
    if f"{n} rated, 0 duplicate, 0 blocked, 0 error" not in run.output:
        raise SystemExit(f"cdrs import did not rate every CDR:\n{run.output}")
    print(f"cdrs import, {n:,} CDRs: {n / run.seconds:,.0f} CDRs/s wall, its CPU "
          f"{run.cpu_s / n * 1e6:.0f} µs/CDR, peak RSS {run.peak_rss_mb:.0f} MB; "
          f"bare COPY {n / raw_s:,.0f} rows/s; load average {os.getloadavg()[0]:.1f}")


def _run_sql(url: str, sql: str) -> None:
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="CDRs in the file")
    parser.add_argument("--cprofile", action="store_true", help="add a cProfile of rating")
    parser.add_argument("--cli", action="store_true",
                        help="time the real command as a process instead")
    parser.add_argument("--sql", default="",
                        help="SQL run on the fresh schema first (to measure a schema change)")
    args = parser.parse_args()
    dbs = Databases()
    try:
        with dbs.url("postgresql") as url, tempfile.TemporaryDirectory() as tmp:
            if args.sql:
                _run_sql(url, args.sql)
            setup = bulk.prepare(url)
            path = Path(tmp) / "cdrs.csv"
            bulk.write_cdrs(path, setup, args.n)
            if args.cli:
                as_command(url, path, args.n)
            else:
                in_process(url, path, args.n, args.cprofile)
    finally:
        dbs.close()


if __name__ == "__main__":
    main()
