"""A throw-away corner of the shared NATS server (127.0.0.1:4222, JetStream) for one test:
streams and subjects named with a random tag, deleted afterwards. NATS being unreachable is a
test failure, never a skip (``./scripts/test`` says how to start it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from commcredits.adapters import nats_bus
from commcredits.services.ports import BusMessage

NATS_URL = os.environ.get("COMMCREDITS_TEST_NATS", "nats://127.0.0.1:4222")


@dataclass
class Bus:
    url: str
    tag: str

    @property
    def stream(self) -> str:
        return f"CDRS_{self.tag}"

    @property
    def dead_stream(self) -> str:
        return f"CDRS_DEAD_{self.tag}"

    @property
    def events_stream(self) -> str:
        return f"EVENTS_{self.tag}"

    @property
    def subject(self) -> str:
        return f"{self.tag}.cdrs.>"

    @property
    def dead_subject(self) -> str:
        return f"{self.tag}.cdrs.dead"

    @property
    def events_prefix(self) -> str:
        return f"{self.tag}.commcredits.events"

    def ingest_args(self, durable: str = "ingest") -> list[str]:
        return ["ingest", "nats", "--url", self.url, "--stream", self.stream, "--subject",
                self.subject, "--dead-subject", self.dead_subject, "--dead-stream",
                self.dead_stream, "--durable", f"{durable}_{self.tag}"]

    def publish_raw(self, payloads: list[tuple[bytes, str | None]],
                    switch: str = "sw1") -> int:
        """(body, Nats-Msg-Id or None) each, on ``<tag>.cdrs.<switch>``."""
        return nats_bus.publish(self.url, [BusMessage(f"{self.tag}.cdrs.{switch}", body, mid)
                                           for body, mid in payloads],
                                self.stream, self.subject)

    def publish(self, cdrs: list[dict[str, Any]]) -> int:
        return self.publish_raw([(json.dumps(c).encode(), str(c["call_id"])) for c in cdrs])

    def messages(self, stream: str, want: int | None = None,
                 timeout_s: float = 10.0) -> list[tuple[str, bytes, dict[str, str]]]:
        """Every message of ``stream`` (subject, body, headers); with ``want``, waits until
        there are that many (a sourced stream fills asynchronously)."""
        return asyncio.run(self._messages(stream, want, timeout_s))

    async def _messages(self, stream: str, want: int | None,
                        timeout_s: float) -> list[tuple[str, bytes, dict[str, str]]]:
        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:
                info = await js.stream_info(stream)
                if want is None or info.state.messages >= want or loop.time() > deadline:
                    break
                await asyncio.sleep(0.1)
            out: list[tuple[str, bytes, dict[str, str]]] = []
            if not info.state.messages:
                return out
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    m = await js.get_msg(stream, seq)
                except NotFoundError:
                    continue
                out.append((m.subject, m.data or b"", dict(m.headers or {})))
            return out
        finally:
            await nc.close()

    def cleanup(self) -> None:
        asyncio.run(self._cleanup())

    async def _cleanup(self) -> None:
        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            for name in (self.dead_stream, self.stream, self.events_stream):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(name)
        finally:
            await nc.close()


async def _reachable(url: str) -> None:
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0,
                            allow_reconnect=False)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


@pytest.fixture
def bus() -> Iterator[Bus]:
    try:
        asyncio.run(_reachable(NATS_URL))
    except Exception as e:  # a failure, not a skip
        pytest.fail(f"NATS with JetStream is not reachable at {NATS_URL} ({e!r}); start it "
                    "(./scripts/test does: nats-server -js) or set COMMCREDITS_TEST_NATS",
                    pytrace=False)
    b = Bus(NATS_URL, f"t{secrets.token_hex(4)}")
    yield b
    b.cleanup()
