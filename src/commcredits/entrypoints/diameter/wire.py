"""Diameter messages on a TCP stream (RFC 6733 §3): framing, decoding and encoding with
python-diameter's codec (its dictionary of RFC 6733 / RFC 4006 / 3GPP AVPs)."""

from __future__ import annotations

import asyncio
from typing import Any

from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp

HEADER = 20
MAX_MESSAGE = 1 << 20  # a Credit-Control message is a few hundred bytes

# command codes
CER = 257  # Capabilities-Exchange
DWR = 280  # Device-Watchdog
DPR = 282  # Disconnect-Peer
CCR = 272  # Credit-Control
ASR = 274  # Abort-Session
RAR = 258  # Re-Auth

REQUEST, PROXIABLE, ERROR, RETRANSMIT = 0x80, 0x40, 0x20, 0x10


class Unreadable(Exception):
    """The stream does not carry a Diameter message: its connection is closed."""


async def read(reader: asyncio.StreamReader) -> Message:
    """The next message; :class:`Unreadable` if it cannot be framed or decoded,
    ``asyncio.IncompleteReadError`` when the peer closed."""
    head = await reader.readexactly(HEADER)
    version, length = head[0], int.from_bytes(head[1:4], "big")
    if version != 1 or not HEADER <= length <= MAX_MESSAGE or length % 4:
        raise Unreadable(f"bad header (version {version}, length {length})")
    raw = head + await reader.readexactly(length - HEADER)
    try:
        msg = Message.from_bytes(raw, plain_msg=True)
        for avp in msg.avps:  # decoded lazily: make sure every value reads
            _touch(avp)
    except Exception as e:  # any decoding failure of the library
        raise Unreadable(f"cannot decode: {type(e).__name__}: {e}") from None
    return msg


def _touch(avp: Avp) -> None:
    v = avp.value
    if isinstance(v, list):
        for inner in v:
            _touch(inner)


def request(code: int, app_id: int, hop: int, end: int, avps: list[Avp],
            proxiable: bool = True) -> bytes:
    flags = REQUEST | (PROXIABLE if proxiable else 0)
    return _bytes(MessageHeader(1, 0, flags, code, app_id, hop, end), avps)


def answer(to: Message, avps: list[Avp], error: bool = False) -> bytes:
    """An answer to ``to``: same command, application and identifiers; E bit for a
    protocol error (3xxx)."""
    h = to.header
    flags = (h.command_flags & PROXIABLE) | (ERROR if error else 0)
    return _bytes(MessageHeader(1, 0, flags, h.command_code, h.application_id,
                                h.hop_by_hop_identifier, h.end_to_end_identifier), avps)


def _bytes(header: MessageHeader, avps: list[Avp]) -> bytes:
    msg = Message(header, avps)
    return msg.as_bytes()


def describe(msg: Message) -> dict[str, Any]:
    h = msg.header
    return {"command": h.command_code, "request": bool(h.command_flags & REQUEST),
            "app": h.application_id, "hop": h.hop_by_hop_identifier}
