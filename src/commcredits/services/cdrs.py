"""Offline rating of call detail records, for switches that only send CDRs afterwards.

The file is checked whole first: any bad line refuses it (every bad line is listed, nothing
is rated). That check streams (:func:`check_file`): it keeps only an 8-byte digest per call id
to find repeats, so a file of millions of CDRs is checked in a few MB. Then the CDRs are read
again, streamed (:func:`read_file`), and rated in batches of :data:`BATCH`, one transaction
per batch (:func:`rate_all`), each CDR exactly as a live call that was granted its full
duration (pool, then credits, then overage) by the live charging code. Idempotent by call id:
an interrupted import can simply be run again, and the calls a concurrent import rated first
count as duplicates.
"""

from __future__ import annotations

import csv
import io
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db import bulk
from commcredits.adapters.db.schema import (
    calls,
    ledger_postings,
    ledger_transactions,
    usage_records,
)
from commcredits.domain import calls as rules
from commcredits.domain import text
from commcredits.domain.errors import DomainError, file_refused
from commcredits.services import charging
from commcredits.services.cdr_batch import BatchWork
from commcredits.services.cdr_fast import Rater

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database, UnitOfWork

COLUMNS = ("call_id", "tenant_id", "call_type", "from", "to", "upn", "organizer_upn",
           "start_time", "duration_s")
REQUIRED = ("call_id", "tenant_id", "call_type", "to", "start_time", "duration_s")
BATCH = 2000  # CDRs per transaction (wallet locks are held for one batch)
_MAX_DURATION_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Cdr:
    line: int
    body: dict[str, Any]
    start: datetime
    duration_s: int


@dataclass(frozen=True, slots=True)
class CdrResult:
    line: int
    call_id: str
    status: str  # rated | blocked | duplicate | error
    charge: str | None = None
    detail: str | None = None
    uncollected: str | None = None  # what credits could not pay (usage is never dropped)
    currency: str | None = None


# -- reading and checking --------------------------------------------------------------------
def _records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by column name) for every non-blank row; a missing required
    column refuses the file at line 1."""
    reader = csv.reader(lines)
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _error([(1, f"missing columns: {', '.join(missing)}; expected "
                          f"{','.join(COLUMNS)}")])
    for raw in reader:
        row = {k: v.strip() for k, v in zip(header, raw, strict=False) if k}
        if any(row.values()):
            yield reader.line_num, row


def _cdr(line: int, row: dict[str, str]) -> Cdr | str:
    """The CDR, or every problem of the row (joined with "; ")."""
    get = row.get
    call_id, tenant_id, duration = get("call_id", ""), get("tenant_id", ""), get("duration_s", "")
    frm, to, upn = get("from", ""), get("to", ""), get("upn", "")
    organizer = get("organizer_upn", "")
    if (to and get("call_type") in rules.CALL_TYPES and duration.isascii() and duration.isdigit()
            and int(duration) <= _MAX_DURATION_S and len(frm) <= 40 and len(to) <= 40
            and len(upn) <= 320 and len(organizer) <= 320
            and text.call_id_problem(call_id) is None and text.id_problem(tenant_id, 40) is None
            and text.text_problem(frm + to + upn + organizer, 1320) is None):
        try:  # a good row (the usual case) checked at once; any doubt: every check below
            start = datetime.fromisoformat(get("start_time", "").replace("Z", "+00:00"))
        except ValueError:
            return _problems(row)
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        return Cdr(line, {"call_id": call_id, "tenant_id": tenant_id,
                          "call_type": row["call_type"], "from": frm, "to": to,
                          "upn": upn or None, "organizer_upn": organizer or None},
                   start, int(duration))
    return _problems(row)


def _problems(row: dict[str, str]) -> str:
    """Every problem of a row the quick check doubted (joined with "; ")."""
    wrong: list[str] = []
    empty = [c for c in REQUIRED if not row.get(c)]
    if empty:
        wrong.append(f"empty {', '.join(empty)}")
    problem = None if empty else _text_problem(row)
    if problem:
        wrong.append(problem)
    if row.get("call_type") and row["call_type"] not in rules.CALL_TYPES:
        wrong.append(f"call_type {row['call_type']!r} is not one of "
                     f"{', '.join(sorted(rules.CALL_TYPES))}")
    if row.get("start_time"):
        try:
            datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
        except ValueError:
            wrong.append(f"start_time {row['start_time']!r} is not ISO 8601")
    duration = row.get("duration_s", "")
    if duration and (not (duration.isascii() and duration.isdigit())
                     or int(duration) > _MAX_DURATION_S):
        wrong.append(f"duration_s {duration!r} must be whole seconds (at most a week)")
    return "; ".join(wrong) or "not a valid CDR"


def _repeat(call_id: str, first: int) -> str:
    return f"call_id {call_id!r} repeats line {first}"


def parse(text: str) -> list[Cdr]:
    """Check and read a whole CDR file held in memory (an HTTP body); ``validation_error``
    listing every bad line if any."""
    return _checked(_records(io.StringIO(text)))


def from_rows(rows: Iterable[dict[str, Any]]) -> list[Cdr]:
    """Check and read CDRs given as objects (a JSON body: the CSV's column names as keys);
    all-or-nothing like a file, ``line`` being the 1-based position in ``rows``."""
    return _checked((i, {k: "" if v is None else str(v).strip() for k, v in row.items()})
                    for i, row in enumerate(rows, start=1))


def _checked(records: Iterable[tuple[int, dict[str, str]]]) -> list[Cdr]:
    problems: list[tuple[int, str]] = []
    cdrs: list[Cdr] = []
    seen: dict[str, int] = {}
    for line, row in records:
        cdr = _cdr(line, row)
        if isinstance(cdr, str):
            problems.append((line, cdr))
        elif cdr.body["call_id"] in seen:
            problems.append((line, _repeat(cdr.body["call_id"], seen[cdr.body["call_id"]])))
        else:
            seen[cdr.body["call_id"]] = line
            cdrs.append(cdr)
    if problems:
        raise _error(problems)
    return cdrs


# the same limits as POST /v1/calls (domain.text): a CDR that passes here cannot fail later
_LIMITS = {"from": 40, "to": 40, "upn": 320, "organizer_upn": 320}


def _text_problem(row: dict[str, str]) -> str | None:
    for field, problem in (("call_id", text.call_id_problem(row["call_id"])),
                           ("tenant_id", text.id_problem(row["tenant_id"], 40))):
        if problem:
            return f"{field} {problem}"
    for field, limit in _LIMITS.items():
        problem = text.text_problem(row.get(field) or "", limit)
        if problem:
            return f"{field} {problem}"
    return None


def _error(problems: list[tuple[int, str]]) -> DomainError:
    return file_refused("CDR file refused, nothing rated", problems)


# -- rating ----------------------------------------------------------------------------------
def rate_all(db: Database, cdrs: Iterable[Cdr],
             progress: Callable[[CdrResult], None] | None = None,
             batch: int = BATCH) -> Iterator[CdrResult]:
    """Rate checked CDRs, ``batch`` per transaction, in order; a result per CDR.

    The tables it fills get fresh statistics as they grow (at ``ANALYZE_FIRST`` CDRs, then
    at each 4x): a foreign-key check planned while they were nearly empty may scan a whole
    tenant's ledger per posting, and ``ANALYZE`` makes every session plan it again."""
    it = iter(cdrs)
    grown = _GROWTH.setdefault(db, [0, ANALYZE_FIRST])  # [CDRs so far, next ANALYZE at]
    while chunk := list(islice(it, batch)):
        for result in _rate_batch(db, chunk):
            if progress:
                progress(result)
            yield result
        grown[0] += len(chunk)  # counted over every call on this database (ingest batches)
        if grown[0] >= grown[1]:
            refresh_statistics(db)
            grown[1] = grown[0] * 4


class _Redo(Exception):
    """A CDR failed half-way through the batch: rate the batch one CDR at a time."""


#: rated CDRs after which :func:`refresh_statistics` is worth it
ANALYZE_AFTER = 10_000
#: CDRs after which ``rate_all`` first refreshes the statistics (then at 4x, 16x, ...)
ANALYZE_FIRST = 4_000
_GROWTH: weakref.WeakKeyDictionary[Database, list[int]] = weakref.WeakKeyDictionary()


def refresh_statistics(db: Database) -> bool:
    """After a big import: the tables it filled get fresh planner statistics at once (a
    ``ledger verify`` or report planned on the empty-table statistics would crawl)."""
    with db.uow() as uow:
        done = bulk.analyze(uow.conn, (calls, usage_records, ledger_transactions,
                                       ledger_postings))
        uow.commit()
    return done


def _rate_batch(db: Database, chunk: list[Cdr]) -> list[CdrResult]:
    for _ in range(2):
        try:
            return _try_batch(db, chunk)
        except sa.exc.IntegrityError:  # a concurrent import stored some of them first
            continue
        except _Redo:
            break
    return [rate_one(db, cdr) for cdr in chunk]


def _try_batch(db: Database, chunk: list[Cdr]) -> list[CdrResult]:
    with db.uow() as uow:
        ids = [c.body["call_id"] for c in chunk]
        if uow.postgres:  # one array parameter, not 2,000 (one query text, parsed once)
            found = uow.conn.execute(sa.text("SELECT call_id, status FROM calls "
                                             "WHERE call_id = ANY(:ids)"), {"ids": ids})
        else:
            found = uow.conn.execute(sa.select(calls.c.call_id, calls.c.status)
                                     .where(calls.c.call_id.in_(ids)))
        stored = {call_id: status for call_id, status in found}
        if any(status in _OPEN for status in stored.values()):
            raise _Redo  # an authorization never ended: settle it, one CDR at a time
        known = set(stored)
        work = BatchWork(uow)
        try:
            results = _rate_new(work, chunk, known)
            work.flush()
        finally:
            work.close()
        uow.commit()
    return results


SEND = 250  # rated CDRs whose rows are written (on PostgreSQL, while the next are rated)


def _rate_new(work: BatchWork, chunk: list[Cdr], known: set[str]) -> list[CdrResult]:
    todo = [c.body for c in chunk if c.body["call_id"] not in known]
    work.lock_wallets({body["tenant_id"] for body in todo})
    work.preload_users(todo)
    fast = Rater(work)
    results: list[CdrResult] = []
    for n, cdr in enumerate(chunk, start=1):
        if cdr.body["call_id"] in known:
            results.append(_duplicate(cdr, "already rated"))
            continue
        before = work.writes
        try:
            end = fast.rate(cdr.body, cdr.start, cdr.duration_s)
            results.append(_rate(work, cdr) if end is None  # type: ignore[arg-type]
                           else _rated(cdr, end))
        except DomainError as e:
            if work.writes != before:
                raise _Redo from e
            results.append(_failed(cdr, e))
        if n % SEND == 0 and n < len(chunk):
            work.send(background=True)
    return results


_OPEN = ("active", "expired")  # authorized, never ended


def rate_one(db: Database, cdr: Cdr) -> CdrResult:
    """Rate one CDR in its own transaction. A call the service authorized but never heard
    the end of (the switch gave up waiting for our answer and let the call through) is
    settled with the CDR's talk; a call already ended or blocked is a duplicate."""
    for attempt in range(2):
        try:
            with db.uow() as uow:
                known = uow.charging.call(cdr.body["call_id"], lock=True)
                if known is not None and (known.status not in _OPEN
                                          or known.tenant_id != cdr.body["tenant_id"]):
                    return _duplicate(cdr, "already rated")
                try:
                    result = _rate(uow, cdr) if known is None else _finish(uow, cdr)
                except DomainError as e:
                    return _failed(cdr, e)
                uow.commit()
                return result
        except sa.exc.IntegrityError:  # another request stored this call at the same moment
            if attempt:
                return _duplicate(cdr, "rated elsewhere")
    raise AssertionError("unreachable")


def _rate(uow: UnitOfWork, cdr: Cdr) -> CdrResult:
    call_id = cdr.body["call_id"]
    decision = charging.authorize_call(uow, max(cdr.duration_s, 1), cdr.body, at=cdr.start,
                                       happened=True)
    if decision["decision"] == "blocked":
        return CdrResult(cdr.line, call_id, "blocked", detail=decision["reason"])
    return _rated(cdr, charging.end_call(uow, call_id, cdr.duration_s))


def _finish(uow: UnitOfWork, cdr: Cdr) -> CdrResult:
    """End the authorized call the CDR reports, its talk starting at the CDR's start."""
    call_id = cdr.body["call_id"]
    return _rated(cdr, charging.end_call(uow, call_id, cdr.duration_s, answered_at=cdr.start))


def _rated(cdr: Cdr, end: dict[str, Any]) -> CdrResult:
    call_id = cdr.body["call_id"]
    short = f", {end['uncollected']} uncollected" if Decimal(end["uncollected"]) else ""
    return CdrResult(cdr.line, call_id, "rated", charge=end["charge"],
                     uncollected=end["uncollected"], currency=end["currency"],
                     detail=f"{end['funding']}, {end['included_minutes']} included min{short}")


def _duplicate(cdr: Cdr, why: str) -> CdrResult:
    return CdrResult(cdr.line, cdr.body["call_id"], "duplicate", detail=why)


def _failed(cdr: Cdr, e: DomainError) -> CdrResult:
    return CdrResult(cdr.line, cdr.body["call_id"], "error", detail=f"{e.code}: {e.message}")
