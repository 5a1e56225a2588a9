"""``services.ingest.run``'s loop against a scripted source (no NATS): what the fetch made
ahead brings when the loop ends is rated (``--once``) or given back at once (stopping),
never left to wait out the ack wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from commcredits.services import ingest


@dataclass
class Msg:
    stream_seq: int
    subject: str = "cdrs.sw1"
    data: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Lag:
    pending: int
    ack_pending: int


class Scripted:
    """Fetches answer from ``batches`` in turn (then nothing); ``lag`` reports only what
    was delivered and not yet acked or nak'ed, as if the rest arrived after it was read."""

    stream, durable, subject = "CDRS", "ingest", "cdrs.>"

    def __init__(self, batches: list[list[Msg]]) -> None:
        self.batches = batches
        self.out: set[int] = set()
        self.acked: list[int] = []
        self.naked: list[tuple[int, float]] = []

    def is_dead(self, msg: Any) -> bool:
        return False

    async def fetch(self, batch: int, timeout_s: float) -> Sequence[Any]:
        await asyncio.sleep(0.01)
        got = self.batches.pop(0) if self.batches else []
        self.out |= {m.stream_seq for m in got}
        return got

    async def lag(self) -> Lag:
        return Lag(0, len(self.out))

    async def dead_letter(self, msg: Any, error: str) -> None:
        raise AssertionError("nothing here is dead")

    async def ack(self, msgs: Sequence[Any]) -> None:
        self.acked += [m.stream_seq for m in msgs]
        self.out -= {m.stream_seq for m in msgs}

    async def nak(self, msgs: Sequence[Any], delay_s: float) -> None:
        self.naked += [(m.stream_seq, delay_s) for m in msgs]
        self.out -= {m.stream_seq for m in msgs}


@pytest.fixture
def rated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []

    def rate(db: Any, msgs: Sequence[Any], is_dead: Any) -> list[ingest.Verdict]:
        seen.extend(m.stream_seq for m in msgs)
        return [ingest.Verdict(m, "rated") for m in msgs]

    async def report(*_: Any) -> None:
        return None

    monkeypatch.setattr(ingest, "rate_messages", rate)
    monkeypatch.setattr(ingest, "_report", report)
    return seen


def test_once_rates_what_the_fetch_ahead_brought_after_the_lag_said_drained(rated):
    # the lag is read after batch 1 is acked: it says drained, yet the fetch made ahead
    # meanwhile caught message 3 (published just then)
    source = Scripted([[Msg(1), Msg(2)], [Msg(3)]])
    totals = asyncio.run(ingest.run(None, source, ingest.Options(once=True)))  # type: ignore[arg-type]
    assert rated == [1, 2, 3]
    assert source.acked == [1, 2, 3] and source.naked == []
    assert totals.counts["rated"] == 3


def test_stopping_gives_back_what_the_fetch_ahead_brought(rated):
    stopping = asyncio.Event()
    source = Scripted([[Msg(1)], [Msg(2)]])

    async def main() -> ingest.Totals:  # told to stop once the first batch is committed
        return await ingest.run(None, source, ingest.Options(),  # type: ignore[arg-type]
                                after_commit=stopping.set, stopping=stopping)

    totals = asyncio.run(main())
    assert rated == [1] and source.acked == [1]
    assert source.naked == [(2, 0)]  # back at once for the next consumer, not rated here
    assert totals.counts["rated"] == 1
