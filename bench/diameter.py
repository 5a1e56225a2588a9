"""``diameter_ccr_per_s``: Credit-Control over a real TCP socket. The Diameter server
(``entrypoints.diameter``) on the charging engine; a load client in a process of its own
keeps 32 sessions in flight on one peer connection, each a CCR-Initial then a
CCR-Termination (a call of 1-280 s), a new session as soon as one ends. Every answer must be
2001 and ``ledger verify`` clean after. Compare with ``http_authorize_end_per_s`` of the
same run (the ``http`` suite): the same two decisions, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import threading
import time
from typing import Any

from bench.charging import FROM, TO, check_ledger, prepare
from bench.common import Databases, Metric, pg_name, runtime

IN_FLIGHT = 32
HOST = "bench-switch.test"


def _avp(code: int, value: Any, vendor: int = 0) -> Any:
    from diameter.message.avp import Avp
    return Avp.new(code, vendor, value=value, is_mandatory=True)


def _message(code: int, hop: int, avps: list[Any], app: int = 4) -> bytes:
    from diameter.message import Message, MessageHeader
    return Message(MessageHeader(1, 0, 0xC0, code, app, hop, hop), avps).as_bytes()


def _ccr(session: str, kind: int, number: int, hop: int, used: int | None) -> bytes:
    from diameter.message import constants as c
    tgpp = c.VENDOR_TGPP
    avps = [_avp(c.AVP_SESSION_ID, session), _avp(c.AVP_ORIGIN_HOST, HOST.encode()),
            _avp(c.AVP_ORIGIN_REALM, b"bench"), _avp(c.AVP_DESTINATION_REALM, b"bench"),
            _avp(c.AVP_AUTH_APPLICATION_ID, 4), _avp(c.AVP_CC_REQUEST_TYPE, kind),
            _avp(c.AVP_CC_REQUEST_NUMBER, number),
            _avp(c.AVP_SUBSCRIPTION_ID, [_avp(c.AVP_SUBSCRIPTION_ID_TYPE, 0),
                                         _avp(c.AVP_SUBSCRIPTION_ID_DATA, FROM.lstrip("+"))])]
    unit = (c.AVP_USED_SERVICE_UNIT, used) if used is not None else \
        (c.AVP_REQUESTED_SERVICE_UNIT, 300)
    avps.append(_avp(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL,
                     [_avp(unit[0], [_avp(c.AVP_CC_TIME, unit[1])])]))
    avps.append(_avp(c.AVP_TGPP_SERVICE_INFORMATION, [_avp(
        c.AVP_TGPP_IMS_INFORMATION, [_avp(c.AVP_TGPP_CALLED_PARTY_ADDRESS, f"tel:{TO}", tgpp)],
        tgpp)], tgpp))
    return _message(272, hop, avps)


async def _load(port: int, pairs: int, tag: str) -> dict[str, Any]:
    """The load client: ``pairs`` CCR-I + CCR-T pairs, ``IN_FLIGHT`` sessions at a time."""
    from diameter.message import Message
    from diameter.message import constants as c
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def read() -> Message:
        head = await reader.readexactly(20)
        rest = await reader.readexactly(int.from_bytes(head[1:4], "big") - 20)
        return Message.from_bytes(head + rest, plain_msg=True)

    cer = [_avp(c.AVP_ORIGIN_HOST, HOST.encode()), _avp(c.AVP_ORIGIN_REALM, b"bench"),
           _avp(c.AVP_HOST_IP_ADDRESS, "127.0.0.1"), _avp(c.AVP_VENDOR_ID, 0),
           _avp(c.AVP_PRODUCT_NAME, "bench"), _avp(c.AVP_AUTH_APPLICATION_ID, 4)]
    writer.write(_message(257, 1, cer, app=0))
    await read()
    rng = random.Random(7)
    pending: dict[int, tuple[str, int]] = {}  # hop → (session, request type)
    hops = iter(range(2, 1 << 30))
    started_sessions = answered = 0
    codes: dict[int, int] = {}

    def begin() -> None:
        nonlocal started_sessions
        session = f"{HOST};{tag};{started_sessions}"
        started_sessions += 1
        hop = next(hops)
        pending[hop] = (session, 1)
        writer.write(_ccr(session, 1, 0, hop, None))

    began = time.perf_counter()
    for _ in range(min(IN_FLIGHT, pairs)):
        begin()
    while pending:
        msg = await read()
        session, kind = pending.pop(msg.header.hop_by_hop_identifier)
        code = next(a.value for a in msg.avps if a.code == c.AVP_RESULT_CODE)
        codes[code] = codes.get(code, 0) + 1
        answered += 1
        if kind == 1:
            hop = next(hops)
            pending[hop] = (session, 3)
            writer.write(_ccr(session, 3, 1, hop, rng.randint(1, 280)))
        elif started_sessions < pairs:
            begin()
    elapsed = time.perf_counter() - began
    writer.close()
    return {"answered": answered, "elapsed": elapsed, "codes": codes}


def _client(port: int, pairs: int, tag: str, out: Any) -> None:
    out.put(asyncio.run(_load(port, pairs, tag)))


def _measure(port: int, pairs: int, tag: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client, args=(port, pairs, tag, out))
    proc.start()
    result: dict[str, Any] = out.get(timeout=600)
    proc.join(30)
    return result


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    from commcredits.entrypoints import diameter as dia
    from commcredits.entrypoints.diameter.server import DiameterServer
    pairs = 300 if quick else 3000
    out = []
    for backend in backends:
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        with dbs.url(backend) as url, runtime(url) as rt:
            prepare(rt)
            config = dia.Config("ocs.bench", "bench", frozenset({HOST}))
            server = DiameterServer(config, rt.engine, rt.db)
            ready = threading.Event()

            def serve(server: DiameterServer = server, ready: threading.Event = ready,
                      rt: Any = rt) -> None:
                with contextlib.suppress(asyncio.CancelledError):
                    asyncio.run(dia.run(rt, server, "127.0.0.1", 0, ready))
            threading.Thread(target=serve, daemon=True).start()
            ready.wait(10)
            try:
                _measure(server.port, 8, "warm")  # imports, deck cache, connection pool
                result = _measure(server.port, pairs, "run")
            finally:
                server.stop()
            if set(result["codes"]) != {2001} or result["answered"] != 2 * pairs:
                raise SystemExit(f"Diameter benchmark answers were not all 2001: {result}")
            check_ledger(rt, f"{label} Diameter")
        per_s = result["answered"] / result["elapsed"]
        out.append(Metric(pg_name("diameter_ccr_per_s", backend), per_s, "CCR/s",
                          f"{label}: CCR-I + CCR-T pairs ({per_s / 2:,.0f} pairs/s), "
                          f"{IN_FLIGHT} sessions in flight from a client process, "
                          f"{pairs:,} pairs; compare http_authorize_end_per_s"))
    return out
