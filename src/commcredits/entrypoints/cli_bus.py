"""Commands of the message bus: ``ingest nats`` (rate CDRs from a JetStream stream)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Annotated

import typer

from commcredits.entrypoints.cli_common import DbOption, _runtime, err, out

ingest_app = typer.Typer(help="Rate CDRs arriving on a message stream.", no_args_is_help=True)


@ingest_app.command("nats")
def ingest_nats(
    url: Annotated[str, typer.Option(help="NATS server with JetStream")] = "nats://127.0.0.1:4222",
    stream: Annotated[str, typer.Option(help="the CDR stream (created when missing)")] = "CDRS",
    subject: Annotated[str, typer.Option(help="subjects of the CDRs")] = "cdrs.>",
    durable: Annotated[str, typer.Option(help="durable consumer name: consumers sharing it "
                                              "share the work")] = "commcredits-ingest",
    once: Annotated[bool, typer.Option(help="drain what is there, then exit")] = False,
    batch: Annotated[int, typer.Option(min=1, max=5000,
                                       help="messages rated per transaction")] = 1000,
    dead_subject: Annotated[str, typer.Option(help="where CDRs that cannot be rated go")]
    = "cdrs.dead",
    dead_stream: Annotated[str, typer.Option(help="the stream keeping them")] = "CDRS_DEAD",
    ack_wait: Annotated[float, typer.Option(min=1, help="seconds before an unacknowledged "
                                                        "message is delivered again")] = 60.0,
    retry: Annotated[float, typer.Option(min=0, help="seconds before a batch that failed "
                                                     "for a transient reason is retried")] = 5.0,
    db: DbOption = None,
) -> None:
    """A durable pull consumer rating each CDR message (a JSON object with the columns of
    `cdrs import`, header Nats-Msg-Id = call id); acks after the commit; exactly once per
    call id; unratable messages go to the dead-letter subject with their error."""
    from commcredits.adapters.nats_bus import BusUnavailable, CdrSource
    from commcredits.services import ingest, recharge
    rt = _runtime(db)
    options = ingest.Options(batch=batch, retry_s=retry, once=once)

    def recharges() -> None:
        recharge.run_due(rt.db, rt.gateway, rt.settings.max_recharges_per_day)

    async def main() -> ingest.Totals:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        async with CdrSource(url, stream, subject, durable, dead_subject, dead_stream,
                             ack_wait_s=ack_wait,
                             max_ack_pending=max(20_000, batch * 4)) as source:
            err.print(f"consuming {stream} ({subject}) as {durable}", highlight=False)
            return await ingest.run(rt.db, source, options, recharges, stopping)

    began = time.perf_counter()
    try:
        totals = asyncio.run(main())
    except BusUnavailable as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(3) from None
    except ingest.Interrupted as exc:
        err.print(f"[red]error[/red] stopped by a transient failure (the batch stays in the "
                  f"stream): {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        with contextlib.suppress(Exception):
            rt.db.engine.dispose()
    c = totals.counts
    out.print(", ".join(f"{c[k]} {k}" for k in ingest.OUTCOMES))
    err.print(f"{sum(c.values())} messages in {time.perf_counter() - began:.1f} s")
