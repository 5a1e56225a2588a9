"""``pg_raw_cycles_per_s``: the database work of one authorize + end cycle, raw, as the
reference for the HTTP figures: per cycle two transactions, each locking a wallet row,
updating it and inserting a row (``pgbench`` with a custom script, 32 clients, the same
tenant spread; a psycopg loop in threads when pgbench is not installed)."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlsplit

import psycopg

TRANSACTION = """BEGIN;
SELECT balance FROM raw_wallets WHERE id = {t} FOR UPDATE;
UPDATE raw_wallets SET balance = balance - 40000, txn_seq = txn_seq + 1 WHERE id = {t};
INSERT INTO raw_entries (wallet_id, amount, ref) VALUES ({t}, 40000, 'call');
COMMIT;
"""


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A plain libpq URL and the environment carrying the benchmark schema's search path."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    options = parse_qs(parts.query).get("options", [""])[0]
    return parts._replace(query="").geturl(), {"PGOPTIONS": options}


def prepare(url: str, wallets: int) -> None:
    plain, env = _libpq(url)
    with psycopg.connect(plain, options=env["PGOPTIONS"]) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_entries, raw_wallets")
        conn.execute("CREATE TABLE raw_wallets (id int PRIMARY KEY, balance bigint NOT NULL, "
                     "txn_seq int NOT NULL)")
        conn.execute("CREATE TABLE raw_entries (id bigserial PRIMARY KEY, wallet_id int NOT NULL,"
                     " amount bigint NOT NULL, ref text, at timestamptz NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO raw_wallets SELECT i, 10^12, 0 FROM generate_series(1, %s) i",
                     (wallets,))


def cycles_per_s(url: str, wallets: int, clients: int, seconds: float) -> float:
    """Raw cycles per second over ``wallets`` rows picked at random (1: one hot row)."""
    prepare(url, wallets)
    if shutil.which("pgbench"):
        return _pgbench(url, wallets, clients, seconds)
    return _threads(url, wallets, clients, seconds)


def transaction_ms(url: str, wallets: int, seconds: float) -> float:
    """Reference for one call at a time: the average latency of ONE raw transaction (row
    lock, UPDATE, INSERT, COMMIT) from a single pgbench client (or psycopg)."""
    prepare(url, wallets)
    plain, env = _libpq(url)
    if not shutil.which("pgbench"):
        with psycopg.connect(plain, options=env["PGOPTIONS"], autocommit=True) as conn:
            began, n = time.perf_counter(), 0
            while time.perf_counter() - began < seconds:
                for statement in TRANSACTION.format(t=1).strip().splitlines():
                    conn.execute(statement.encode(), prepare=True)
                n += 1
            return (time.perf_counter() - began) / n * 1000
    script = f"\\set t random(1, {wallets})\n" + TRANSACTION.format(t=":t")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["pgbench", "-n", "-c", "1", "-T", str(max(1, round(seconds))), "-f", f.name,
             plain], capture_output=True, text=True, env={**os.environ, **env}, check=False)
    finally:
        os.unlink(f.name)
    found = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def _pgbench(url: str, wallets: int, clients: int, seconds: float) -> float:
    plain, env = _libpq(url)
    script = f"\\set t random(1, {wallets})\n" + TRANSACTION.format(t=":t") * 2
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(max(1, round(seconds))),
             "-f", f.name, plain], capture_output=True, text=True,
            env={**os.environ, **env}, check=False)
    finally:
        os.unlink(f.name)
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))  # one script run is one cycle


def _threads(url: str, wallets: int, clients: int, seconds: float) -> float:
    plain, env = _libpq(url)
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        rng = random.Random(k)
        with psycopg.connect(plain, options=env["PGOPTIONS"], autocommit=True) as conn:
            while time.monotonic() < stop:
                t = rng.randint(1, wallets)
                for _ in range(2):
                    for statement in TRANSACTION.format(t=t).strip().splitlines():
                        conn.execute(statement.encode(), prepare=True)
                counts[k] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - began)
