"""Diameter Ro/Gy (Credit-Control, application 4): ``commcredits diameter`` and
``serve --diameter-port``. ``server`` speaks the protocol, ``charging.ro`` maps it onto the
charging engine, ``cuts`` pushes cuts as Abort-Session-Requests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING

from commcredits.entrypoints.diameter.cuts import DiameterCuts
from commcredits.entrypoints.diameter.server import Config, DiameterServer

if TYPE_CHECKING:
    from commcredits.entrypoints.runtime import Runtime

log = logging.getLogger(__name__)
CUT_POLL_S = 1.0  # how often cuts committed by other processes are looked for


def attach(rt: Runtime, config: Config) -> DiameterServer:
    """A server on ``rt``'s engine; ``rt``'s cuts of Diameter calls go out as ASRs."""
    now = (lambda: _db_now(rt)) if rt.db.manual_clock else None
    server = DiameterServer(config, rt.engine, rt.db, now)
    rt.switch = DiameterCuts(server, rt.switch)
    return server


async def run(rt: Runtime, server: DiameterServer, host: str, port: int,
              started: threading.Event | None = None) -> None:
    """Serve until cancelled; also deliver the cuts of this server's sessions that another
    process (``serve``, an operator's ``POST /v1/calls/cut``) committed."""
    listener = await server.start(host, port)
    server.main = asyncio.current_task()
    log.info("diameter on %s:%s as %s", host, server.port, server.config.origin_host)
    if started is not None:
        started.set()
    try:
        async with listener:
            for tick in itertools.count(1):
                await asyncio.sleep(CUT_POLL_S)
                if tick % 60 == 0:
                    server.forget_idle()
                if server.by_call:
                    await asyncio.to_thread(_deliver_cuts, rt, sorted(server.by_call))
    finally:
        listener.close()


def _db_now(rt: Runtime) -> datetime:
    with rt.db.uow(readonly=True) as uow:
        return uow.now


def _deliver_cuts(rt: Runtime, call_ids: list[str]) -> None:
    from commcredits.services import cuts
    with rt.db.uow(readonly=True) as uow:  # the usual answer: none (no write transaction)
        if not uow.switching.cuts_of_calls(call_ids, cuts.CLAIMABLE):
            return
    with rt.db.uow() as uow:
        due = cuts.claim(uow, call_ids)
        uow.commit()
    if due:
        with contextlib.suppress(Exception):  # retried on the next poll
            cuts.deliver(rt.db, rt.switch, due)


def start_in_thread(rt: Runtime, config: Config, host: str, port: int) -> DiameterServer:
    """``serve --diameter-port``: the Diameter server on an event loop of its own thread,
    beside the HTTP server, on the same engine."""
    server = attach(rt, config)
    started = threading.Event()
    def serve() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(run(rt, server, host, port, started))
    threading.Thread(target=serve, daemon=True, name="diameter").start()
    if not started.wait(10):
        raise RuntimeError(f"the Diameter server did not start on {host}:{port}")
    return server
