"""The bulk paths on PostgreSQL: ``cdrs import``, the PSTN usage export, ``ledger verify``.

One data set serves all three: a tenant gets ``N`` CDRs through ``commcredits cdrs import``
(1,000,000 in the full run), which leaves ``N`` usage records and about ``N`` ledger
transactions to export and verify. Each command runs as its own process (the CLI a user would
run), timed from outside; peak RSS is that process's ``ru_maxrss``. Every metric stands next
to an in-run reference: the same rows through a bare ``COPY`` (import), a plain
``csv.writer`` loop over a server-side cursor (CSV) and a bare XlsxWriter loop (Excel).
"""

from __future__ import annotations

import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.charging import SMALL_DECK
from bench.common import Databases, Metric
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.domain import licensing
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import credits, directory, payments, rating, tenants

# who calls: pay-as-you-go on credits, and a domestic Calling Plan (its pool, then credits)
USERS = (("payg", ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP")),
         ("dom", ("MCOEV", "MCOPSTN1", "MCOPSTNPP")))
USERS_PER_KIND = 50
DESTINATIONS = ("+1425555", "+1206555", "+44207946", "+4474001", "+33612", "+49301234")
NUMBERS = 20_000  # distinct dialled numbers in the file


@dataclass(frozen=True, slots=True)
class Setup:
    url: str
    tenant_id: str
    upns: list[str]


def _runtime(url: str) -> Runtime:
    settings = Settings(db=url, smtp_url=None, min_order=Decimal(50))
    return Runtime(settings, Database(make_engine(url)), TestGateway(), None)


def prepare(url: str) -> Setup:
    """A US tenant with 100 users (half pay-as-you-go, half on a domestic Calling Plan),
    10,000,000.00 of credits and a small deck; real time (the CLI's clock)."""
    rt = _runtime(url)
    upns = []
    try:
        with rt.db.uow() as uow:
            tenant = tenants.create_tenant(uow, "Bulk Co", "US", "legacy")
            for sku in {s for _, skus in USERS for s in skus}:
                if not licensing.sku(sku).free_unlimited:
                    directory.add_seats(uow, tenant.id, sku, USERS_PER_KIND * 2)
            for kind, skus in USERS:
                for i in range(USERS_PER_KIND):
                    upn = f"{kind}{i}@bulk.example"
                    directory.create_user(uow, tenant.id, upn, f"{kind} {i}", "US", None)
                    for sku in skus:
                        directory.assign_license(uow, tenant.id, upn, sku)
                    upns.append(upn)
            card = credits.add_card(uow, rt.gateway, tenant.id, "4242424242424242", 12, 2035)
            rating.import_deck(uow, tenant.currency, SMALL_DECK)
            uow.commit()
        # paid outside any transaction, as every order is (services.payments)
        payments.place_order(rt.db, rt.gateway,
                             payments.Limits(Decimal(50), Decimal(100_000_000)), tenant.id,
                             "10000000.00", card["id"])
    finally:
        rt.db.engine.dispose()
    return Setup(url, tenant.id, upns)


def write_cdrs(path: Path, setup: Setup, count: int, seed: int = 7) -> None:
    """``count`` finished calls over the last 25 days, oldest first."""
    rng = random.Random(seed)
    numbers = [(p := rng.choice(DESTINATIONS)) + str(rng.randint(0, 10**9)).zfill(12)[:12 - len(p)]
               for _ in range(NUMBERS)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=25)
    step = 25 * 24 * 3600 / count
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("call_id", "tenant_id", "call_type", "from", "to", "upn", "organizer_upn",
                    "start_time", "duration_s"))
        for i in range(count):
            at = start + timedelta(seconds=int(i * step))
            w.writerow((f"cdr-{i:08d}", setup.tenant_id, "user_out", "+14255550100",
                        rng.choice(numbers), rng.choice(setup.upns), "",
                        at.strftime("%Y-%m-%dT%H:%M:%SZ"), rng.randint(5, 600)))


CHARGE = 40_000  # 0.04 in millionths: a 2-minute call to London


def seed_history(url: str, tenant_id: str, count: int) -> None:
    """``count`` settled calls straight into the tables, by the database (``generate_series``):
    a usage record and a ledger transaction with its posting each, the lot and the wallet
    brought down to match, so ``ledger verify`` passes. Much faster than rating them, for
    the export and verify benchmarks."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn:
        lot, seq0, balance = conn.execute(
            "SELECT l.id, w.txn_seq, w.balance FROM lots l JOIN wallets w USING (tenant_id) "
            "WHERE l.tenant_id = %s", (tenant_id,)).fetchone()
        first = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=20)
        args = {"t": tenant_id, "n": count, "first": first, "c": CHARGE, "lot": lot,
                "seq0": seq0, "b0": balance, "lot_account": f"lot:{lot}",
                "usage_account": f"ext:{tenant_id}:usage",
                "lots_json": f'[["{lot}", "0.04"]]', "step": 20 * 24 * 3600 / count}
        conn.execute("""
            INSERT INTO usage_records (id, tenant_id, kind, ref, conference_id, user_location,
                user_id, upn, display_name, caller_id, call_type, number_type, scope,
                destination, destination_number, start_time, end_time, duration_s,
                connection_fee, charge, currency, capability, funding, included_minutes,
                credits_charge, overage_charge, uncollected, lots)
            SELECT 'use_h' || i, %(t)s, 'call', 'hist-' || i, NULL, 'US', 'usr_' || (i %% 100),
                'payg' || (i %% 100) || '@bulk.example', 'Payg User ' || (i %% 100),
                '+14255550100', 'user_out', 'geographic', 'International', 'United Kingdom',
                '+4420794' || lpad((i %% 100000)::text, 5, '0'),
                %(first)s + make_interval(secs => floor(i * %(step)s)),
                %(first)s + make_interval(secs => floor(i * %(step)s) + 90), 90,
                0, %(c)s, 'USD', 'MCOPSTNPP', 'credits', 0, %(c)s, 0, 0,
                %(lots_json)s
            FROM generate_series(1, %(n)s) AS i""", args)
        conn.execute("""
            INSERT INTO ledger_transactions (id, tenant_id, seq, kind, at, amount,
                balance_after, lot_id, reference)
            SELECT 'txn_h' || i, %(t)s, %(seq0)s + i, 'usage',
                %(first)s + make_interval(secs => floor(i * %(step)s) + 90), -%(c)s,
                %(b0)s - %(c)s::bigint * i, %(lot)s, 'call hist-' || i
            FROM generate_series(1, %(n)s) AS i""", args)
        conn.execute("""
            INSERT INTO ledger_postings (transaction_id, tenant_id, debit_account,
                credit_account, amount)
            SELECT 'txn_h' || i, %(t)s, %(lot_account)s, %(usage_account)s, %(c)s
            FROM generate_series(1, %(n)s) AS i""", args)
        conn.execute("UPDATE lots SET remaining = remaining - %(c)s::bigint * %(n)s "
                     "WHERE id = %(lot)s", args)
        conn.execute("UPDATE wallets SET balance = balance - %(c)s::bigint * %(n)s, "
                     "txn_seq = txn_seq + %(n)s WHERE tenant_id = %(t)s", args)


def analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn:
        conn.execute("ANALYZE usage_records; ANALYZE ledger_transactions; "
                     "ANALYZE ledger_postings; ANALYZE calls")


def _transactions(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn:
        return int(conn.execute("SELECT count(*) FROM ledger_transactions").fetchone()[0])


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    output: str
    cpu_s: float  # user + system time of the command's process (not the database's)


def cli(*args: str, url: str) -> Run:
    """Run ``commcredits ARGS --db URL`` in its own process; time and peak RSS from outside."""
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "bench.measure", "commcredits", *args, "--db", url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
                         f"{done.stderr}")
    rss_line = done.stderr.strip().splitlines()[-1]
    return Run(seconds, float(rss_line.split("=")[1]), done.stdout, cpu_s)


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="commcredits-bulk-") as tmp:
        yield Path(tmp)


def raw_copy_cdrs(url: str, path: Path) -> float:
    """Reference: the CDR file into an unlogged scratch table by a bare ``COPY`` (no rating,
    no checks): the floor under any import. Returns seconds."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn:
        conn.execute("CREATE UNLOGGED TABLE bench_raw_cdrs (call_id text, tenant_id text, "
                     "call_type text, from_number text, to_number text, upn text, "
                     "organizer_upn text, start_time timestamptz, duration_s int)")
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_raw_cdrs FROM STDIN (FORMAT csv, "
                                            "HEADER true)") as copy, path.open("rb") as fh:
            while data := fh.read(1 << 20):
                copy.write(data)
        conn.commit()
        seconds = time.perf_counter() - began
        conn.execute("DROP TABLE bench_raw_cdrs")
    return seconds


def plain_csv(url: str, tenant_id: str, out: Path) -> float:
    """Reference: the same records through a server-side cursor into a plain
    ``csv.writer`` loop, no formatting. Returns rows per second."""
    import psycopg

    began = time.perf_counter()
    n = 0
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn, \
            conn.cursor(name="plain") as cur, out.open("w", newline="") as fh:
        cur.itersize = 5000
        cur.execute("SELECT * FROM usage_records WHERE tenant_id = %s AND kind = 'call' "
                    "ORDER BY start_time, id", (tenant_id,))
        writer = csv.writer(fh)
        while rows := cur.fetchmany(5000):
            writer.writerows(rows)
            n += len(rows)
    return n / (time.perf_counter() - began)


def plain_xlsxwriter(url: str, tenant_id: str, out: Path, limit: int) -> float:
    """Reference: ``limit`` records into XlsxWriter in ``constant_memory`` mode, one
    ``write_row`` per record (the library the export used before). Returns rows/s."""
    import psycopg
    import xlsxwriter

    began = time.perf_counter()
    n = 0
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True})
    ws = wb.add_worksheet("Usage")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as conn, \
            conn.cursor(name="plain") as cur:
        cur.execute("SELECT id, ref, conference_id, user_location, user_id, upn, "
                    "display_name, caller_id, call_type, number_type, scope, destination, "
                    "destination_number, start_time::text, end_time::text, duration_s, "
                    "connection_fee, charge, currency, capability FROM usage_records "
                    "WHERE tenant_id = %s AND kind = 'call' ORDER BY start_time, id LIMIT %s",
                    (tenant_id, limit))
        while rows := cur.fetchmany(5000):
            for row in rows:
                n += 1
                ws.write_row(n, 0, row)
    wb.close()
    return n / (time.perf_counter() - began)


def first_byte(url: str, path: str, key: str) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds to the last, bytes) of one GET."""
    import httpx

    began = time.perf_counter()
    first = 0.0
    size = 0
    with httpx.Client(base_url=url, timeout=600) as client, client.stream(
            "GET", path, headers={"Authorization": f"Bearer {key}"}) as r:
        if r.status_code != 200:
            raise SystemExit(f"GET {path} answered {r.status_code}")
        for part in r.iter_bytes():
            if not first:
                first = time.perf_counter() - began
            size += len(part)
    return first, time.perf_counter() - began, size


def _http(url: str, setup: Setup, n: int) -> list[Metric]:
    from commcredits.entrypoints.embedded import serving
    from commcredits.services.access import create_api_key

    rt = _runtime(url)
    try:
        with rt.db.uow() as uow:
            _, key, _ = create_api_key(uow, "operator", None)
            uow.commit()
        base = f"/v1/tenants/{setup.tenant_id}/reports/pstn-usage?days=28&format="
        with serving(rt) as server:
            _, csv_s, _ = first_byte(server, base + "csv", key)
            xlsx_first, xlsx_s, _ = first_byte(server, base + "xlsx", key)
    finally:
        rt.db.engine.dispose()
    return [
        Metric("http_csv_rows_per_s", n / csv_s, "rows/s",
               f"GET .../pstn-usage?format=csv, {n:,} rows, uvicorn in the bench process"),
        Metric("http_xlsx_rows_per_s", n / xlsx_s, "rows/s", f"the same as xlsx, {n:,} rows"),
        Metric("http_xlsx_first_byte_ms", xlsx_first * 1000, "ms",
               "time to the first byte of that Excel download"),
    ]


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    n_import = 10_000 if quick else 1_000_000
    n = 20_000 if quick else 1_000_000
    out: list[Metric] = []
    with dbs.url("postgresql") as url, _workdir() as tmp:
        setup = prepare(url)
        cdrs = tmp / "cdrs.csv"
        write_cdrs(cdrs, setup, n_import)
        raw_s = raw_copy_cdrs(url, cdrs)
        imported = cli("cdrs", "import", str(cdrs), url=url)
        if f"{n_import} rated, 0 duplicate, 0 blocked, 0 error" not in imported.output:
            raise SystemExit(f"cdrs import did not rate every CDR:\n{imported.output}")
        out += [
            Metric("cdr_import_per_s_pg", n_import / imported.seconds, "CDRs/s",
                   f"commcredits cdrs import, {n_import:,} CDRs (check + rate), own process, "
                   f"peak RSS {imported.peak_rss_mb:.0f} MB, its CPU "
                   f"{imported.cpu_s / n_import * 1e6:.0f} µs/CDR, load average "
                   f"{os.getloadavg()[0]:.1f} after it"),
            Metric("ref_raw_copy_cdrs_per_s_pg", n_import / raw_s, "rows/s",
                   "reference: the same file by a bare COPY into a scratch table"),
        ]
        if n > n_import:  # the rest of the rows to export, straight into the tables
            seed_history(url, setup.tenant_id, n - n_import)
        analyze(url)  # what autovacuum does after a big load, at once
        total = max(n, n_import)
        for ext, name in (("csv", "csv_rows_per_s"), ("xlsx", "xlsx_rows_per_s")):
            run_ = cli("report", "pstn-usage", "--tenant", setup.tenant_id, "--days", "28",
                       "--out", str(tmp / f"usage.{ext}"), url=url)
            if f"wrote {total} rows" not in run_.output:
                raise SystemExit(f"the {ext} export did not write {total} rows:\n{run_.output}")
            out.append(Metric(name, total / run_.seconds, "rows/s",
                              f"commcredits report pstn-usage --out .{ext}, {total:,} rows, "
                              f"own process, peak RSS {run_.peak_rss_mb:.0f} MB"))
            if ext == "xlsx":
                out.append(Metric("xlsx_peak_rss_mb", run_.peak_rss_mb, "MB",
                                  "peak RSS of that Excel export process"))
        out.append(Metric("ref_plain_csv_rows_per_s", plain_csv(url, setup.tenant_id,
                                                                tmp / "plain.csv"), "rows/s",
                          "reference: server-side cursor into a bare csv.writer loop"))
        limit = min(total, 100_000)
        out.append(Metric("ref_xlsxwriter_rows_per_s",
                          plain_xlsxwriter(url, setup.tenant_id, tmp / "plain.xlsx", limit),
                          "rows/s", f"reference: XlsxWriter constant_memory write_row loop, "
                                    f"{limit:,} rows"))
        out += _http(url, setup, total)
        verified = cli("ledger", "verify", url=url)
        if "ledger OK" not in verified.output:
            raise SystemExit(f"ledger verify failed:\n{verified.output}")
        out += [
            Metric("ledger_verify_peak_rss_mb", verified.peak_rss_mb, "MB",
                   f"commcredits ledger verify over {_transactions(url):,} transactions, "
                   "own process"),
            Metric("ledger_verify_s", verified.seconds, "s", "its time, whole command"),
        ]
    return out
