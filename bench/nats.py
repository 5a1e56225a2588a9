"""``nats_cdrs_per_s``: CDRs rated per second by ``commcredits ingest nats --once`` from a
JetStream stream into PostgreSQL (the real command in its own process, timed from outside,
like ``cdrs import``), beside two references measured in the same run:

* the same CDRs (same calls, a tenant of its own) through ``commcredits cdrs import`` from a
  file: the batch rating path both share;
* the same messages fetched and acked by a bare pull consumer (no rating): what JetStream and
  nats-py give on this machine, the ceiling of the stream side.

The stream, its subjects and consumers carry a random tag and are deleted afterwards (the
NATS server is shared). The command's time includes its start and its last empty fetch (1 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time

from bench.bulk import _workdir, cli, prepare, write_cdrs
from bench.common import Databases, Metric
from commcredits.adapters import nats_bus
from commcredits.services.ports import BusMessage

NATS_URL = os.environ.get("COMMCREDITS_BENCH_NATS", "nats://127.0.0.1:4222")


def _messages(path: os.PathLike[str], subject: str) -> list[BusMessage]:
    import csv
    with open(path, newline="", encoding="utf-8") as fh:
        return [BusMessage(subject, json.dumps(row).encode(), row["call_id"])
                for row in csv.DictReader(fh)]


async def _bare_consume(stream: str, subject: str, dead: str, n: int) -> float:
    """Fetch and ack ``n`` messages with a throw-away durable; returns messages/s."""
    durable = f"bare_{secrets.token_hex(3)}"
    async with nats_bus.CdrSource(NATS_URL, stream, subject, durable, dead,
                                  f"{stream}_DEAD") as source:
        began = time.perf_counter()
        got = 0
        while got < n:
            msgs = await source.fetch(1000, 1.0)
            if not msgs:
                break
            await source.ack(msgs)
            got += len(msgs)
        if got != n:
            raise SystemExit(f"the bare consumer fetched {got} of {n} messages")
        return got / (time.perf_counter() - began)


async def _drop(*streams: str) -> None:
    nc = await nats_bus.connect(NATS_URL, "commcredits-bench")
    js = nc.jetstream()
    for name in streams:
        with contextlib.suppress(Exception):  # already gone
            await js.delete_stream(name)
    await nc.close()


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    n = 2_000 if quick else 50_000
    tag = secrets.token_hex(4)
    stream, subject = f"BENCH_CDRS_{tag}", f"bench{tag}.cdrs.>"
    dead = f"bench{tag}.cdrs.dead"
    try:
        with dbs.url("postgresql") as url, dbs.url("postgresql") as ref_url, \
                _workdir() as tmp:
            setup, ref_setup = prepare(url), prepare(ref_url)
            cdrs, ref_cdrs = tmp / "cdrs.csv", tmp / "ref.csv"
            write_cdrs(cdrs, setup, n)
            write_cdrs(ref_cdrs, ref_setup, n)
            msgs = _messages(cdrs, f"bench{tag}.cdrs.switch1")
            began = time.perf_counter()
            if nats_bus.publish(NATS_URL, msgs, stream, subject) != n:
                raise SystemExit("JetStream did not store every CDR message")
            publish_s = time.perf_counter() - began
            bare = asyncio.run(_bare_consume(stream, subject, dead, n))
            ingested = cli("ingest", "nats", "--url", NATS_URL, "--stream", stream,
                           "--subject", subject, "--dead-subject", dead, "--dead-stream",
                           f"{stream}_DEAD", "--durable", f"bench_{tag}", "--once",
                           "--batch", "2000", url=url)
            if f"{n} rated, 0 duplicate, 0 blocked, 0 dead" not in ingested.output:
                raise SystemExit(f"ingest nats did not rate every CDR:\n{ingested.output}")
            imported = cli("cdrs", "import", str(ref_cdrs), url=ref_url)
            if f"{n} rated, 0 duplicate" not in imported.output:
                raise SystemExit(f"cdrs import did not rate every CDR:\n{imported.output}")
    finally:
        asyncio.run(_drop(f"{stream}_DEAD", stream))
    per_s, import_per_s = n / ingested.seconds, n / imported.seconds
    return [
        Metric("nats_cdrs_per_s", per_s, "CDRs/s",
               f"commcredits ingest nats --once --batch 2000, {n:,} CDR messages into "
               f"PostgreSQL, own process, peak RSS {ingested.peak_rss_mb:.0f} MB "
               f"(target >= 5,000)"),
        Metric("ref_nats_cdr_import_per_s", import_per_s, "CDRs/s",
               "reference: the same CDRs through commcredits cdrs import from a file"),
        Metric("nats_vs_import", per_s / import_per_s, "x",
               "nats_cdrs_per_s / ref_nats_cdr_import_per_s (1 = the stream costs nothing)"),
        Metric("ref_nats_bare_consume_per_s", bare, "msgs/s",
               "reference: the same messages fetched + acked by a bare pull consumer"),
        Metric("ref_nats_publish_per_s", n / publish_s, "msgs/s",
               "reference: publishing them (nats-py, acked by JetStream, Nats-Msg-Id)"),
    ]
