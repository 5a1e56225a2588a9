"""The Diameter Credit-Control server (API.md §Diameter Ro/Gy): asyncio over TCP.

Translation only. A connection must open with a CER from a configured peer (else CEA 3010
and close; no CER within ``cer_timeout_s``: closed); then DWR/DWA, DPR/DPA, and CCRs, which
``charging.ro`` maps onto the charging engine's requests, exactly as the HTTP telephony
routes ask them (``Request(Kind…, body, who=switch)``). A message that cannot be decoded
closes its connection and no other. Cuts reach the peer as an Abort-Session-Request for the
call's Session-Id (:meth:`DiameterServer.abort`).

Idempotency: the answer of each CC-Request-Number is kept with its session, so a CCR sent
again (the T flag) is answered the same without asking the engine again; a twin that
arrives while the first is still being decided waits for the first's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from diameter.message import Message
from diameter.message import constants as c
from diameter.message.avp import Avp, AvpGrouped
from pydantic import BaseModel, ValidationError

from commcredits.charging import ro
from commcredits.charging.requests import Kind, Request
from commcredits.domain.access import Principal, Role
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.routes.telephony import count_decision, count_settled, count_sms
from commcredits.entrypoints.api.schemas import CallIn, SmsIn
from commcredits.entrypoints.diameter import wire
from commcredits.services import switching

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database
    from commcredits.charging.engine import ChargingEngine

log = logging.getLogger(__name__)
RELAY = 0xFFFFFFFF
ENDED_KEPT = 10_000  # ended sessions remembered for retransmitted CCR-Terminations
IDLE_SESSION_S = 4 * 3600.0  # a session not heard from for this long is forgotten


@dataclass(frozen=True, slots=True)
class Config:
    origin_host: str
    origin_realm: str
    peers: frozenset[str]  # the Origin-Host of each peer allowed in
    host_ip: str = "127.0.0.1"
    cer_timeout_s: float = 5.0
    answer_timeout_s: float = 5.0  # how long an ASR waits for its ASA
    slice_s: int = 300  # granted when a call's time is unlimited (the engine's slice)
    product: str = "commcredits"


class Peer:
    """One open connection, after its CER."""

    def __init__(self, host: str, realm: str, writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.realm = realm
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[Message]] = {}  # hop-by-hop id → answer

    def send(self, data: bytes) -> None:
        self.writer.write(data)


class DiameterServer:
    def __init__(self, config: Config, engine: ChargingEngine, db: Database,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.engine = engine
        self.db = db
        self.now = now or (lambda: datetime.now(UTC))
        self.who = Principal("diameter", Role.SWITCH, None)
        self.sessions: dict[str, ro.Session] = {}
        self.ended: OrderedDict[str, ro.Session] = OrderedDict()
        self.by_call: dict[str, str] = {}  # call id → Session-Id
        self.peers: dict[str, Peer] = {}  # Origin-Host → its live connection
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[tuple[str, int], asyncio.Future[list[Avp]]] = {}
        self._ids = itertools.count(int(time.time()) & 0xFFFFF << 12)
        self._tasks: set[asyncio.Task[None]] = set()
        self.state_id = int(time.time())
        self.port = 0
        self.main: asyncio.Task[None] | None = None  # the task of ``run``

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen (``port`` 0: any free port, then found in ``self.port``)."""
        self.loop = asyncio.get_running_loop()
        listener = await asyncio.start_server(self._connection, host, port)
        self.port = listener.sockets[0].getsockname()[1]
        return listener

    def stop(self) -> None:
        """End :func:`commcredits.entrypoints.diameter.run` (from any thread)."""
        if self.loop is not None and self.main is not None:
            self.loop.call_soon_threadsafe(self.main.cancel)

    # -- a connection --------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer: Peer | None = None
        try:
            first = await asyncio.wait_for(wire.read(reader), self.config.cer_timeout_s)
            peer = self._capabilities(first, writer)
            if peer is None:
                return
            while True:
                msg = await wire.read(reader)
                if not self._dispatch(peer, msg):
                    return
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, wire.Unreadable) as e:
            log.info("diameter connection closed: %s", type(e).__name__)
        except asyncio.CancelledError:  # the server stops
            pass
        finally:
            if peer is not None and self.peers.get(peer.host) is peer:
                del self.peers[peer.host]
            if peer is not None:
                for waiting in peer.waiting.values():
                    waiting.cancel()
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()

    def _identity(self) -> list[Avp]:
        return ro.identity(self.config.origin_host, self.config.origin_realm)

    def _capabilities(self, msg: Message, writer: asyncio.StreamWriter) -> Peer | None:
        """The CER: the peer, or None (answered 3010/5010, or not a CER: closed)."""
        h = msg.header
        if h.command_code != wire.CER or not h.command_flags & wire.REQUEST:
            return None
        host = ro.text(ro.value(msg.avps, c.AVP_ORIGIN_HOST)) or ""
        apps = {a.value for a in msg.avps if a.code == c.AVP_AUTH_APPLICATION_ID}
        for vsa in msg.avps:
            if vsa.code == c.AVP_VENDOR_SPECIFIC_APPLICATION_ID and isinstance(vsa, AvpGrouped):
                apps |= {a.value for a in vsa.value if a.code == c.AVP_AUTH_APPLICATION_ID}
        code = ro.Code.SUCCESS
        if host not in self.config.peers:
            code = ro.Code.UNKNOWN_PEER
        elif not apps & {ro.APP_CREDIT_CONTROL, RELAY}:
            code = ro.Code.NO_COMMON_APPLICATION
        avps = [ro.new(c.AVP_RESULT_CODE, int(code)), *self._identity(),
                ro.new(c.AVP_HOST_IP_ADDRESS, self.config.host_ip),
                ro.new(c.AVP_VENDOR_ID, 0), ro.new(c.AVP_PRODUCT_NAME, self.config.product,
                                                   mandatory=False),
                ro.new(c.AVP_ORIGIN_STATE_ID, self.state_id),
                ro.new(c.AVP_SUPPORTED_VENDOR_ID, ro.TGPP),
                ro.new(c.AVP_AUTH_APPLICATION_ID, ro.APP_CREDIT_CONTROL),
                # Ro clients (Kamailio's cdp) route Credit-Control as 4 of vendor 3GPP
                ro.new(c.AVP_VENDOR_SPECIFIC_APPLICATION_ID, [
                    ro.new(c.AVP_VENDOR_ID, ro.TGPP),
                    ro.new(c.AVP_AUTH_APPLICATION_ID, ro.APP_CREDIT_CONTROL)])]
        writer.write(wire.answer(msg, avps, error=code == ro.Code.UNKNOWN_PEER))
        if code != ro.Code.SUCCESS:
            log.warning("diameter CER from %r refused: %s", host, int(code))
            return None
        peer = Peer(host, ro.text(ro.value(msg.avps, c.AVP_ORIGIN_REALM)) or "", writer)
        self.peers[host] = peer
        return peer

    def _dispatch(self, peer: Peer, msg: Message) -> bool:
        """Act on one message; False when the connection is to close."""
        h = msg.header
        if not h.command_flags & wire.REQUEST:  # an answer to one of our requests
            waiting = peer.waiting.pop(h.hop_by_hop_identifier, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(msg)
            return True
        ok = [ro.new(c.AVP_RESULT_CODE, int(ro.Code.SUCCESS)), *self._identity()]
        if h.command_code == wire.DWR:
            peer.send(wire.answer(msg, [*ok, ro.new(c.AVP_ORIGIN_STATE_ID, self.state_id)]))
            return True
        if h.command_code == wire.DPR:
            peer.send(wire.answer(msg, ok))
            return False
        if h.command_code == wire.CCR and h.application_id == ro.APP_CREDIT_CONTROL:
            task = asyncio.ensure_future(self._credit_control(peer, msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        code = ro.Code.COMMAND_UNSUPPORTED if h.command_code != wire.CCR \
            else ro.Code.APPLICATION_UNSUPPORTED
        sid = ro.text(ro.value(msg.avps, c.AVP_SESSION_ID))
        peer.send(wire.answer(msg, ro.error_avps(sid, code, self.config.origin_host,
                                                 self.config.origin_realm), error=True))
        return True

    # -- Credit-Control ------------------------------------------------------------------------
    async def _credit_control(self, peer: Peer, msg: Message) -> None:
        sid = ro.text(ro.value(msg.avps, c.AVP_SESSION_ID))
        try:
            ccr = ro.parse_ccr(msg.avps)
        except ro.Rejected as e:
            peer.send(wire.answer(msg, ro.error_avps(sid, e.code, self.config.origin_host,
                                                     self.config.origin_realm, e.message,
                                                     e.avp)))
            return
        key = (ccr.session_id, ccr.number)
        twin = self._inflight.get(key)
        if twin is not None:  # a retransmission while the first is being decided
            peer.send(wire.answer(msg, await asyncio.shield(twin)))
            return
        future: asyncio.Future[list[Avp]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            avps = await self._answer(peer, ccr)
            future.set_result(avps)
        except BaseException as e:
            future.set_exception(e)
            raise
        finally:
            del self._inflight[key]
        peer.send(wire.answer(msg, avps))
        log.info("diameter CCR %s #%d of %s used %ds: %s", ccr.request_type.name,
                 ccr.number, ccr.session_id, ccr.used_s, ro.value(avps, c.AVP_RESULT_CODE))

    async def _answer(self, peer: Peer, ccr: ro.Ccr) -> list[Avp]:
        try:
            cca = await self._decide(peer, ccr)
        except ro.Rejected as e:
            return ro.error_avps(ccr.session_id, e.code, self.config.origin_host,
                                 self.config.origin_realm, e.message, e.avp)
        except DomainError as e:
            cca = ro.for_error(e.code, e.message)
        except Exception:  # the database is down, say: nothing was committed; try again
            log.exception("diameter CCR of %s failed", ccr.session_id)
            return ro.error_avps(ccr.session_id, ro.Code.UNABLE_TO_COMPLY,
                                 self.config.origin_host, self.config.origin_realm,
                                 "the charging engine could not decide; send it again")
        return ro.cca_avps(cca, ccr, self.config.origin_host, self.config.origin_realm)

    async def _decide(self, peer: Peer, ccr: ro.Ccr) -> ro.Cca:
        session = self.sessions.get(ccr.session_id) or self.ended.get(ccr.session_id)
        if session is not None:
            session.seen = time.monotonic()
        if session is not None and ccr.number in session.answers:
            cached: ro.Cca = session.answers[ccr.number]
            return cached  # sent again: the same answer, charged once
        if ccr.request_type is ro.RequestType.INITIAL:
            return await self._initial(peer, ccr, session)
        if ccr.request_type is ro.RequestType.EVENT:
            return await self._event(ccr)
        if session is None:
            session = await self._recover(peer, ccr)
        if session.ended:
            return ro.Cca(ro.Code.SUCCESS)  # terminated already (before a restart)
        kind, body, total = ro.report(session, ccr, self.now())
        answer: dict[str, Any] = await self.engine.ask_async(Request(kind, body, who=self.who))
        session.used_s, session.answered = total, session.answered or total > 0
        if kind is Kind.END:
            count_settled(answer)
            cca = ro.Cca(ro.Code.SUCCESS)
            self._end(session)
        else:
            cca = ro.for_interim(answer, total, self.config.slice_s)
        session.answers[ccr.number] = cca
        return cca

    async def _initial(self, peer: Peer, ccr: ro.Ccr, session: ro.Session | None) -> ro.Cca:
        if session is not None:  # a second CCR-Initial on a live session: the first's grant
            return next(iter(session.answers.values()), ro.Cca(ro.Code.SUCCESS))
        tenant_id, upn, phone = await self._subscriber(ccr)
        body = _validated(CallIn, ro.call_body(ccr, tenant_id, upn, phone))
        decision = await self.engine.ask_async(Request(Kind.AUTHORIZE, body, who=self.who))
        count_decision(decision)
        cca = ro.for_authorize(decision, self.config.slice_s)
        if cca.code is ro.Code.SUCCESS:
            session = ro.Session(ccr.session_id, body["call_id"], peer.host,
                                 seen=time.monotonic())
            session.answers[ccr.number] = cca
            self.sessions[ccr.session_id] = session
            self.by_call[session.call_id] = ccr.session_id
        return cca

    async def _event(self, ccr: ro.Ccr) -> ro.Cca:
        tenant_id, upn, phone = await self._subscriber(ccr)
        body = _validated(SmsIn, ro.sms_body(ccr, tenant_id, upn, phone))
        result = await self.engine.ask_async(Request(Kind.SMS, body, who=self.who))
        count_sms(result)
        return ro.for_sms(result)  # the engine answers a repeated message id the same

    async def _subscriber(self, ccr: ro.Ccr) -> tuple[str, str, str | None]:
        key = ro.subscriber_key(ccr.subscriber)
        if key is None:
            raise ro.Rejected(ro.Code.USER_UNKNOWN if ccr.subscriber else ro.Code.MISSING_AVP,
                              "Subscription-Id must be END_USER_E164 or END_USER_SIP_URI")
        found = await asyncio.to_thread(self._read, switching.subscriber, key)
        if found is None:
            raise ro.Rejected(ro.Code.USER_UNKNOWN, f"no user has {key[0]} {key[1]}")
        return found

    async def _recover(self, peer: Peer, ccr: ro.Ccr) -> ro.Session:
        """A session this process does not hold: its call, as stored (after a restart)."""
        call_id = ro.call_id_of(ccr.session_id)
        live = await asyncio.to_thread(self._read, switching.live_call, call_id)
        if live is None:
            raise ro.Rejected(ro.Code.UNKNOWN_SESSION_ID,
                              f"no Credit-Control session {ccr.session_id!r}")
        status, elapsed, answered = live
        session = ro.Session(ccr.session_id, call_id, peer.host, used_s=elapsed,
                             answered=answered, ended=status not in ("active", "expired"),
                             seen=time.monotonic())
        if not session.ended:
            self.sessions[ccr.session_id] = session
            self.by_call[call_id] = ccr.session_id
        return session

    def forget_idle(self, idle_s: float = IDLE_SESSION_S) -> int:
        """Drop the sessions not heard from in ``idle_s`` (a peer that never sent the
        CCR-Termination; the service settles such calls itself). One that comes back is
        rebuilt from its stored call."""
        cutoff = time.monotonic() - idle_s
        gone = [s for s in self.sessions.values() if s.seen < cutoff]
        for session in gone:
            del self.sessions[session.session_id]
            self.by_call.pop(session.call_id, None)
        return len(gone)

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.db.uow(readonly=True) as uow:
            return fn(uow, *args)

    def _end(self, session: ro.Session) -> None:
        session.ended = True
        self.sessions.pop(session.session_id, None)
        self.by_call.pop(session.call_id, None)
        self.ended[session.session_id] = session
        while len(self.ended) > ENDED_KEPT:
            self.ended.popitem(last=False)

    # -- cuts ----------------------------------------------------------------------------------
    def holds(self, call_id: str) -> bool:
        return call_id in self.by_call

    async def abort(self, call_id: str) -> int:
        """Send the peer of ``call_id``'s session an Abort-Session-Request; its ASA's
        Result-Code. ``LookupError`` when no session or no connection to its peer."""
        sid = self.by_call.get(call_id)
        if sid is None and call_id.removeprefix(ro.CALL_PREFIX) in self.ended:
            return int(ro.Code.UNKNOWN_SESSION_ID)  # over already: nothing left to cut
        session = self.sessions.get(sid) if sid else None
        peer = self.peers.get(session.peer) if session else None
        if session is None or peer is None:
            raise LookupError(f"no live Diameter session for call {call_id!r}")
        hop = next(self._ids) & 0xFFFFFFFF
        waiting: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        peer.waiting[hop] = waiting
        avps = [ro.new(c.AVP_SESSION_ID, session.session_id), *self._identity(),
                ro.new(c.AVP_DESTINATION_REALM, peer.realm.encode()),
                ro.new(c.AVP_DESTINATION_HOST, peer.host.encode()),
                ro.new(c.AVP_AUTH_APPLICATION_ID, ro.APP_CREDIT_CONTROL)]
        peer.send(wire.request(wire.ASR, ro.APP_CREDIT_CONTROL, hop, hop, avps))
        log.info("diameter ASR for %s sent to %s", session.session_id, peer.host)
        try:
            asa = await asyncio.wait_for(waiting, self.config.answer_timeout_s)
        finally:
            peer.waiting.pop(hop, None)
        return int(ro.value(asa.avps, c.AVP_RESULT_CODE) or 0)


def _validated(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` through the same validation as its HTTP route (``POST /v1/calls``,
    ``POST /v1/sms``): 5004 naming the field it refuses."""
    try:
        return model.model_validate(body).model_dump(by_alias=True)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        raise ro.Rejected(ro.Code.INVALID_AVP_VALUE, f"{field}: {first['msg']}") from None
