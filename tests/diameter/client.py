"""A small Diameter client over a real TCP socket (what a switch's Ro client sends), for the
tests and the load bench. Built on the same codec as the server (python-diameter)."""

from __future__ import annotations

import itertools
import socket
from typing import Any

from diameter.message import Message, MessageHeader
from diameter.message import constants as c
from diameter.message.avp import Avp, AvpGrouped

TGPP = c.VENDOR_TGPP
INITIAL, UPDATE, TERMINATION, EVENT = 1, 2, 3, 4
_hops = itertools.count(1)


def avp(code: int, value: Any, vendor: int = 0, mandatory: bool = True) -> Avp:
    return Avp.new(code, vendor, value=value, is_mandatory=mandatory)


def encode(code: int, avps: list[Avp], *, app: int = 4, request: bool = True,
           retransmit: bool = False, hop: int | None = None) -> tuple[bytes, int]:
    hop = next(_hops) if hop is None else hop
    flags = (0x80 if request else 0) | 0x40 | (0x10 if retransmit else 0)
    msg = Message(MessageHeader(1, 0, flags, code, app, hop, hop), avps)
    return msg.as_bytes(), hop


def ccr_avps(session: str, kind: int, number: int, *, sub: tuple[int, str] | None = (
        0, "14255550100"), called: str | None = "tel:+442079460123",
        requested: int | None = 300, used: int | None = None,
        extra: list[Avp] | None = None, host: str = "kamailio.test") -> list[Avp]:
    avps = [avp(c.AVP_SESSION_ID, session), avp(c.AVP_ORIGIN_HOST, host.encode()),
            avp(c.AVP_ORIGIN_REALM, b"test"), avp(c.AVP_DESTINATION_REALM, b"occ.test"),
            avp(c.AVP_AUTH_APPLICATION_ID, 4),
            avp(c.AVP_SERVICE_CONTEXT_ID, "32260@3gpp.org"),
            avp(c.AVP_CC_REQUEST_TYPE, kind), avp(c.AVP_CC_REQUEST_NUMBER, number)]
    if sub is not None:
        avps.append(avp(c.AVP_SUBSCRIPTION_ID, [avp(c.AVP_SUBSCRIPTION_ID_TYPE, sub[0]),
                                                avp(c.AVP_SUBSCRIPTION_ID_DATA, sub[1])]))
    if kind == EVENT:
        avps.append(avp(c.AVP_REQUESTED_ACTION, 0))
    mscc: list[Avp] = []
    if requested is not None and kind in (INITIAL, UPDATE):
        mscc.append(avp(c.AVP_REQUESTED_SERVICE_UNIT, [avp(c.AVP_CC_TIME, requested)]))
    if used is not None:
        mscc.append(avp(c.AVP_USED_SERVICE_UNIT, [avp(c.AVP_CC_TIME, used)]))
    if mscc:
        avps.append(avp(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, mscc))
    if called is not None:
        avps.append(avp(c.AVP_TGPP_SERVICE_INFORMATION, [avp(
            c.AVP_TGPP_IMS_INFORMATION, [avp(c.AVP_TGPP_CALLED_PARTY_ADDRESS, called, TGPP)],
            TGPP)], TGPP))
    return avps + (extra or [])


def find(avps: list[Avp], *path: int) -> Any:
    for code in path:
        hit = next((a for a in avps if a.code == code), None)
        if hit is None:
            return None
        if isinstance(hit, AvpGrouped):
            avps = hit.value
    return hit.value


class Client:
    def __init__(self, port: int, host: str = "kamailio.test", timeout: float = 10.0) -> None:
        self.host = host
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.requests: list[Message] = []  # requests the server sent us (ASR)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Message | None:
        """The next message, or None when the server closed the connection."""
        head = self._exactly(20)
        if head is None:
            return None
        rest = self._exactly(int.from_bytes(head[1:4], "big") - 20)
        return None if rest is None else Message.from_bytes(head + rest, plain_msg=True)

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except (ConnectionResetError, TimeoutError):
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def ask(self, code: int, avps: list[Avp], **kw: Any) -> Message:
        data, hop = encode(code, avps, **kw)
        self.sock.sendall(data)
        return self.answer_to(hop)

    def answer_to(self, hop: int) -> Message:
        while True:
            msg = self.read()
            assert msg is not None, "the server closed the connection"
            if msg.header.command_flags & 0x80:
                self.requests.append(msg)
                continue
            if msg.header.hop_by_hop_identifier == hop:
                return msg

    def cer(self, apps: tuple[int, ...] = (4,)) -> Message:
        avps = [avp(c.AVP_ORIGIN_HOST, self.host.encode()), avp(c.AVP_ORIGIN_REALM, b"test"),
                avp(c.AVP_HOST_IP_ADDRESS, "127.0.0.1"), avp(c.AVP_VENDOR_ID, 10415),
                avp(c.AVP_PRODUCT_NAME, "test-client", mandatory=False),
                *[avp(c.AVP_AUTH_APPLICATION_ID, a) for a in apps]]
        return self.ask(257, avps, app=0)

    def ccr(self, session: str, kind: int, number: int, retransmit: bool = False,
            **kw: Any) -> Message:
        return self.ask(272, ccr_avps(session, kind, number, host=self.host, **kw),
                        retransmit=retransmit)

    def asa(self, request: Message, code: int = 2001) -> None:
        avps = [avp(c.AVP_SESSION_ID, find(request.avps, c.AVP_SESSION_ID)),
                avp(c.AVP_RESULT_CODE, code), avp(c.AVP_ORIGIN_HOST, self.host.encode()),
                avp(c.AVP_ORIGIN_REALM, b"test")]
        data, _ = encode(274, avps, request=False, hop=request.header.hop_by_hop_identifier)
        self.sock.sendall(data)


def result(msg: Message) -> int:
    return int(find(msg.avps, c.AVP_RESULT_CODE))


def granted(msg: Message) -> int | None:
    return find(msg.avps, c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, c.AVP_GRANTED_SERVICE_UNIT,
                c.AVP_CC_TIME)


def final(msg: Message) -> bool:
    return find(msg.avps, c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL,
                c.AVP_FINAL_UNIT_INDICATION, c.AVP_FINAL_UNIT_ACTION) == 0
