"""NATS JetStream (nats-py): the CDR stream a pull consumer reads, its dead letters, and the
stream domain events are published to. Only I/O here; what to do with a message is
``services.ingest`` / ``services.events``.

* :class:`CdrSource`: a durable pull consumer on a stream (created when missing, with the
  subject given) that fetches messages in batches, acks, naks and dead-letters them.
* Dead letters go to a subject (``cdrs.dead``) kept in a stream of their own (``CDRS_DEAD``):
  a stream with that subject, or, when the CDR stream's own subjects already cover it (the
  default ``cdrs.>`` does), a stream *sourcing* that subject from the CDR stream, so dead
  letters outlive the CDR stream's limits. The consumer passes over them (``is_dead``).
* :class:`NatsEventBus`: publishes domain events, each with its ``Nats-Msg-Id``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig, StreamSource
from nats.js.errors import NotFoundError

from commcredits.services.ports import BusMessage

log = logging.getLogger(__name__)
MSG_ID = "Nats-Msg-Id"
ERROR_HEADER = "Commcredits-Error"
DUPLICATE_WINDOW_S = 120.0  # JetStream's default: a re-published id within it is dropped
PULL_OVERRUN_S = 0.1  # how long a pull request may live on after its fetch returned


class BusUnavailable(ConnectionError):
    """NATS could not be reached (or JetStream is off)."""


def _covers(pattern: str, subject: str) -> bool:
    """Whether the subject pattern (with ``*`` and ``>``) matches ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def _header_text(text: str) -> str:
    """One line, at most 1,000 characters, never naming a Nats-* header."""
    return re.sub("(nats)-", r"\1_", " ".join(text.split()), flags=re.IGNORECASE)[:1000]


async def _quiet(exc: Exception) -> None:
    log.warning("nats: %s: %s", type(exc).__name__, exc)


async def connect(url: str, name: str, *, reconnect: bool = False) -> Client:
    """Connect, failing within seconds when NATS is not there; with ``reconnect`` the
    connection then reconnects for as long as it takes (a long-running consumer)."""
    try:
        nc = await nats.connect(url, name=name, connect_timeout=3, max_reconnect_attempts=1,
                                reconnect_time_wait=1, error_cb=_quiet)
    except Exception as exc:  # nats-py raises several kinds for "not there"
        raise BusUnavailable(f"NATS is not reachable at {url}: {exc}") from exc
    if reconnect:
        nc.options["max_reconnect_attempts"] = -1  # nats-py reads it at each reconnect
    return nc


async def ensure_stream(js: JetStreamContext, name: str, subjects: list[str]) -> None:
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=subjects,
                                         duplicate_window=DUPLICATE_WINDOW_S))


@dataclass(frozen=True, slots=True)
class Incoming:
    """One fetched message, as the service needs it."""

    data: bytes
    subject: str
    headers: dict[str, str]
    stream_seq: int
    delivered: int
    raw: Msg


@dataclass(frozen=True, slots=True)
class Lag:
    pending: int  # in the stream, not yet delivered to the consumer
    ack_pending: int  # delivered, not yet acknowledged


class CdrSource:
    """A durable pull consumer: ``async with CdrSource(...) as source``."""

    def __init__(self, url: str, stream: str, subject: str, durable: str,
                 dead_subject: str = "cdrs.dead", dead_stream: str = "CDRS_DEAD",
                 ack_wait_s: float = 60.0, max_ack_pending: int = 20_000) -> None:
        self.url, self.stream, self.subject, self.durable = url, stream, subject, durable
        self.dead_subject, self.dead_stream = dead_subject, dead_stream
        self.ack_wait_s, self.max_ack_pending = ack_wait_s, max_ack_pending
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._sub: Any = None

    async def __aenter__(self) -> CdrSource:
        self.nc = await connect(self.url, f"commcredits-ingest-{self.durable}", reconnect=True)
        self.js = self.nc.jetstream()
        try:
            await ensure_stream(self.js, self.stream, [self.subject])
            await self._ensure_dead_stream()
            self._sub = await self.js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s,
                                      max_deliver=-1, max_ack_pending=self.max_ack_pending))
        except Exception:
            await self.nc.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.nc is not None:  # every ack was flushed after its batch: nothing to drain
            await self.nc.close()

    async def _ensure_dead_stream(self) -> None:
        assert self.js is not None
        try:
            await self.js.stream_info(self.dead_stream)
            return
        except NotFoundError:
            pass
        info = await self.js.stream_info(self.stream)
        if any(_covers(s, self.dead_subject) for s in info.config.subjects or []):
            config = StreamConfig(name=self.dead_stream, sources=[
                StreamSource(name=self.stream, filter_subject=self.dead_subject)])
        else:
            config = StreamConfig(name=self.dead_stream, subjects=[self.dead_subject],
                                  duplicate_window=DUPLICATE_WINDOW_S)
        await self.js.add_stream(config)

    def is_dead(self, msg: Incoming) -> bool:
        """A dead letter of ours that the CDR stream also holds (its subjects cover them)."""
        return msg.subject == self.dead_subject

    async def fetch(self, batch: int, timeout_s: float) -> list[Incoming]:
        try:
            msgs = await self._sub.fetch(batch, timeout=timeout_s)
        except TimeoutError:  # nats-py's (and asyncio's): nothing came in time
            return []
        return [Incoming(m.data, m.subject, dict(m.headers or {}), m.metadata.sequence.stream,
                         m.metadata.num_delivered, m) for m in msgs]

    async def lag(self) -> Lag:
        info = await self._sub.consumer_info()
        return Lag(int(info.num_pending or 0), int(info.num_ack_pending or 0))

    async def dead_letter(self, msg: Incoming, error: str) -> None:
        """Keep the message under the dead-letter subject with its error; the id makes a
        second try (after a crash before the ack) a duplicate JetStream drops."""
        assert self.js is not None
        # Nats-Msg-Id first: the server looks for its Nats-* headers in the raw header text,
        # so no value may say "Nats-" (the message's own Nats-* headers are not carried over)
        headers = {MSG_ID: f"dead:{self.stream}:{msg.stream_seq}",
                   ERROR_HEADER: _header_text(error),
                   "Commcredits-Subject": _header_text(msg.subject),
                   "Commcredits-Stream-Seq": str(msg.stream_seq)}
        if MSG_ID in msg.headers:
            headers["Commcredits-Msg-Id"] = _header_text(msg.headers[MSG_ID])
        headers.update({k: v for k, v in msg.headers.items()
                        if not k.lower().startswith("nats-") and k not in headers})
        await self.js.publish(self.dead_subject, msg.data, headers=headers)

    async def ack(self, msgs: Sequence[Incoming]) -> None:
        for m in msgs:
            await m.raw.ack()
        assert self.nc is not None
        await self.nc.flush()

    async def nak(self, msgs: Sequence[Incoming], delay_s: float) -> None:
        """Give messages back for redelivery after ``delay_s``. Called once no fetch of ours is
        running; it first waits out the server's side of the last one (a pull request lives
        on a moment after its fetch returned: a message nak'ed into it would land where no
        fetch reads it, redelivered only after the ack wait)."""
        if not msgs:
            return
        await asyncio.sleep(PULL_OVERRUN_S)
        for m in msgs:
            await m.raw.nak(delay=delay_s)
        assert self.nc is not None
        await self.nc.flush()


def publish(url: str, messages: Sequence[BusMessage], stream: str, subjects: str,
            chunk: int = 5000) -> int:
    """Publish ``messages`` to JetStream (the stream created with ``subjects`` when missing),
    each with its ``Nats-Msg-Id``; returns how many JetStream had not seen (the others were
    duplicates within its window). Raises if any could not be stored."""
    return asyncio.run(_publish(url, messages, stream, subjects, chunk))


async def _publish(url: str, messages: Sequence[BusMessage], stream: str, subjects: str,
                   chunk: int) -> int:
    nc = await connect(url, "commcredits-publisher")
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, [subjects])
        new = 0
        for i in range(0, len(messages), chunk):
            acks = await asyncio.gather(*(
                js.publish(m.subject, m.payload, headers={MSG_ID: m.msg_id} if m.msg_id else None)
                for m in messages[i:i + chunk]))
            new += sum(not a.duplicate for a in acks)
        return new
    finally:
        await nc.close()


class NatsEventBus:
    """``services.ports.EventBus`` over JetStream: synchronous (the jobs are), one connection
    per call of :meth:`publish`, the events stream created when missing."""

    def __init__(self, url: str, stream: str, subjects: str) -> None:
        self.url, self.stream, self.subjects = url, stream, subjects

    def publish(self, messages: Sequence[BusMessage]) -> int:
        return publish(self.url, messages, self.stream, self.subjects)
