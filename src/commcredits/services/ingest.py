"""Rating CDRs that arrive on a message stream (NATS JetStream), a batch at a time.

Each message is one CDR: a JSON object with the columns of ``cdrs import`` (``call_id,
tenant_id, call_type, from, to, upn, organizer_upn, start_time, duration_s``), published with
the header ``Nats-Msg-Id`` = its call id. A fetched batch is checked message by message, rated
through the import's batch path (:func:`commcredits.services.cdrs.rate_all`: idempotent by
call id), and only after that commit are the messages acknowledged. So:

* a message delivered again (a crash before the ack, ``kill -9``, a consumer too slow for the
  ack wait, several consumers) finds its call id stored and counts as a duplicate: each CDR
  is charged exactly once;
* a message that can never be rated (not JSON, a bad or missing field, an unknown tenant, a
  ``Nats-Msg-Id`` that is not its call id) is *dead*: published to the dead-letter subject
  with its error, then acknowledged, and the stream goes on;
* anything else going wrong with the batch (the database away, an unexpected error) is
  transient: the whole batch is nak'ed for redelivery after ``retry_s``, nothing is dead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from commcredits.domain.errors import DomainError
from commcredits.services import cdrs

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

log = logging.getLogger(__name__)
MSG_ID = "Nats-Msg-Id"
OUTCOMES = ("rated", "duplicate", "blocked", "dead", "skipped")


class Message(Protocol):
    data: bytes
    subject: str
    headers: dict[str, str]
    stream_seq: int


class Lag(Protocol):
    pending: int
    ack_pending: int


class Source(Protocol):
    """A durable pull consumer (``adapters.nats_bus.CdrSource``)."""

    stream: str
    durable: str
    subject: str

    def is_dead(self, msg: Any) -> bool: ...
    async def fetch(self, batch: int, timeout_s: float) -> Sequence[Any]: ...
    async def lag(self) -> Lag: ...
    async def dead_letter(self, msg: Any, error: str) -> None: ...
    async def ack(self, msgs: Sequence[Any]) -> None: ...
    async def nak(self, msgs: Sequence[Any], delay_s: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    msg: Any
    outcome: str  # one of OUTCOMES
    error: str | None = None


@dataclass
class Options:
    batch: int = 1000  # messages fetched (and rated in one transaction) at a time
    fetch_timeout_s: float = 1.0
    retry_s: float = 5.0  # a transient failure: redelivered (and retried) after this
    once: bool = False  # drain what is there, then return


class Interrupted(RuntimeError):
    """``--once`` met a transient failure: the batch was nak'ed and stays in the stream."""


@dataclass
class Totals:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    batches: int = 0

    def add(self, verdicts: Sequence[Verdict]) -> dict[str, int]:
        batch = dict.fromkeys(OUTCOMES, 0)
        for v in verdicts:
            batch[v.outcome] += 1
        for k, n in batch.items():
            self.counts[k] += n
        self.batches += 1
        return batch


def decode(msg: Message) -> cdrs.Cdr | str:
    """The CDR a message carries, or why it can never be rated."""
    try:
        body = json.loads(msg.data)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(body, dict):
        return "not a JSON object"
    unknown = sorted(set(body) - set(cdrs.COLUMNS))
    if unknown:
        return f"unknown fields {', '.join(unknown)}; expected {', '.join(cdrs.COLUMNS)}"
    if any(isinstance(v, dict | list) for v in body.values()):
        return "every field must be a string or a number"
    try:
        cdr = cdrs.from_rows([body])[0]
    except DomainError as exc:
        return "; ".join(str(d["message"]) for d in exc.details or []) or exc.message
    msg_id = msg.headers.get(MSG_ID)
    if msg_id is not None and msg_id != cdr.body["call_id"]:
        return f"{MSG_ID} {msg_id!r} is not the call_id {cdr.body['call_id']!r}"
    return cdr


def rate_messages(db: Database, msgs: Sequence[Message],
                  is_dead: Callable[[Any], bool]) -> list[Verdict]:
    """Rate a batch in one go (one transaction unless a CDR forces the slow path); a verdict
    per message, in order. Raises on a transient failure (nothing to ack then)."""
    verdicts: dict[int, Verdict] = {}
    index: dict[str, int] = {}
    todo: list[cdrs.Cdr] = []
    for i, msg in enumerate(msgs):
        if is_dead(msg):
            verdicts[i] = Verdict(msg, "skipped")
            continue
        found = decode(msg)
        if isinstance(found, str):
            verdicts[i] = Verdict(msg, "dead", found)
        elif found.body["call_id"] in index:  # sent twice: the first one decides
            verdicts[i] = Verdict(msg, "duplicate")
        else:
            index[found.body["call_id"]] = i
            todo.append(found)
    for result in cdrs.rate_all(db, todo):
        i = index[result.call_id]
        if result.status == "error":
            verdicts[i] = Verdict(msgs[i], "dead", result.detail)
        else:
            verdicts[i] = Verdict(msgs[i], result.status)
    return [verdicts[i] for i in range(len(msgs))]


def report(db: Database, source: Source, counts: dict[str, int], lag: Lag) -> None:
    """Note the batch's counts and the consumer's lag where ``/metrics`` reads them."""
    for attempt in range(2):
        try:
            with db.uow() as uow:
                uow.bus.report_ingest(
                    source.stream, source.durable, source.subject, counts, lag.pending,
                    lag.ack_pending, uow.now)
                uow.commit()
            return
        except sa.exc.IntegrityError:  # another consumer added the row at the same moment
            if attempt:
                raise


async def run(db: Database, source: Source, options: Options,
              after_commit: Callable[[], Any] | None = None,
              stopping: asyncio.Event | None = None) -> Totals:
    """Fetch, rate, dead-letter, ack; until ``stopping`` is set, or (``once``) until the
    consumer has nothing pending nor awaiting an ack anywhere. The next batch is fetched while
    one is being rated; whatever that fetch brings when the loop ends is rated too (``once``)
    or nak'ed back (stopping, a transient failure), never left to the ack wait."""
    totals = Totals()
    ahead: asyncio.Future[Sequence[Any]] | None = None
    while stopping is None or not stopping.is_set():
        msgs = await (ahead or source.fetch(options.batch, options.fetch_timeout_s))
        ahead = None
        if not msgs:
            lag = await source.lag()
            await _report(db, source, {}, lag)
            if options.once and lag.pending == 0 and lag.ack_pending == 0:
                break
            continue
        ahead = asyncio.ensure_future(source.fetch(options.batch, options.fetch_timeout_s))
        try:
            verdicts = await asyncio.to_thread(rate_messages, db, msgs, source.is_dead)
        except Exception as exc:  # the database away, or a bug: retry later, lose nothing
            log.warning("ingest: batch of %d nak'ed for redelivery in %.0f s: %s: %s",
                        len(msgs), options.retry_s, type(exc).__name__, exc)
            await source.nak([*msgs, *await ahead], options.retry_s)
            ahead = None
            if options.once:
                raise Interrupted(f"{type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(options.retry_s)
            continue
        for v in verdicts:
            if v.outcome == "dead":
                log.warning("ingest: message %s dead-lettered: %s", v.msg.stream_seq, v.error)
                await source.dead_letter(v.msg, v.error or "")
        await source.ack([v.msg for v in verdicts])
        counts = totals.add(verdicts)
        lag = await source.lag()
        await _report(db, source, counts, lag)
        if after_commit is not None and counts["rated"]:
            await asyncio.to_thread(after_commit)
        if options.once and lag.pending == 0 and lag.ack_pending == 0:
            late = await ahead  # published since the lag was read: rate it, then look again
            if not late:
                return totals
            ahead = _ready(late)
    if ahead is not None:  # stopping: what the last fetch brought goes back at once
        await source.nak(await ahead, 0)
    return totals


def _ready(msgs: Sequence[Any]) -> asyncio.Future[Sequence[Any]]:
    done: asyncio.Future[Sequence[Any]] = asyncio.get_running_loop().create_future()
    done.set_result(msgs)
    return done


async def _report(db: Database, source: Source, counts: dict[str, int], lag: Lag) -> None:
    try:
        await asyncio.to_thread(report, db, source, counts, lag)
    except Exception as exc:  # progress is for /metrics only: never stop rating for it
        log.warning("ingest: could not record progress: %s: %s", type(exc).__name__, exc)
