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

from commcredits.adapters.db import bulk
from commcredits.adapters.db.schema import (
    calls,
    ledger_postings,
    ledger_transactions,
    usage_records,
)
from commcredits.charging.engine import ChargingEngine
from commcredits.charging.requests import Cdr, CdrOutcome, Kind, Request
from commcredits.charging.requests import Settings as EngineSettings
from commcredits.domain import calls as rules
from commcredits.domain import dates, text
from commcredits.domain.access import Principal, Role
from commcredits.domain.errors import DomainError, file_refused

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

COLUMNS = ("call_id", "tenant_id", "call_type", "from", "to", "upn", "organizer_upn",
           "start_time", "duration_s")
REQUIRED = ("call_id", "tenant_id", "call_type", "to", "start_time", "duration_s")
BATCH = 2000  # CDRs per transaction (wallet locks are held for one batch)
_MAX_DURATION_S = 7 * 24 * 3600


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


def unknown_columns(names: Iterable[str]) -> list[str]:
    """The columns (or JSON fields) of CDRs that nothing reads, in the order given, each
    once: the CDRs are imported without them and the import's summary names them, so a
    misspelt column (``duration`` for ``duration_s``) does not go unnoticed."""
    out: list[str] = []
    for name in names:
        if name and name not in COLUMNS and name not in out:
            out.append(name)
    return out


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
            when = get("start_time", "")
            if dates.timestamp_problem(when):
                return _problems(row)
            start = datetime.fromisoformat(when.replace("Z", "+00:00"))
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
            if dates.timestamp_problem(row["start_time"]):
                raise ValueError
            datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
        except ValueError:
            wrong.append(f"start_time {row['start_time'][:40]!r} is not an RFC 3339 "
                         f"date-time such as {dates.TIMESTAMP_EXAMPLE}")
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
#: who rates a CDR when no caller is named (an import from the command line, the NATS stream)
SYSTEM = Principal("system", Role.OPERATOR)


def rate_all(db: Database, cdrs: Iterable[Cdr],
             progress: Callable[[CdrResult], None] | None = None,
             batch: int = BATCH, who: Principal = SYSTEM) -> Iterator[CdrResult]:
    """Rate checked CDRs through the charging engine, ``batch`` per transaction, in order;
    a result per CDR. Each CDR is decided exactly as a live call authorized for its whole
    talk and ended at once (``charging.requests.rate_cdr``); a database error raises.

    The tables it fills get fresh statistics as they grow (at ``ANALYZE_FIRST`` CDRs, then
    at each 4x): a foreign-key check planned while they were nearly empty may scan a whole
    tenant's ledger per posting, and ``ANALYZE`` makes every session plan it again."""
    it = iter(cdrs)
    engine = ChargingEngine(db, EngineSettings())
    grown = _GROWTH.setdefault(db, [0, ANALYZE_FIRST])  # [CDRs so far, next ANALYZE at]
    while chunk := list(islice(it, batch)):
        requests = [Request(Kind.CDR, c.body, who=who, cdr=c) for c in chunk]
        engine.run(requests, cap=batch)
        for cdr, request in zip(chunk, requests, strict=True):
            result = _result(cdr, request)
            if progress:
                progress(result)
            yield result
        grown[0] += len(chunk)  # counted over every call on this database (ingest batches)
        if grown[0] >= grown[1]:
            refresh_statistics(db)
            grown[1] = grown[0] * 4


def rate_one(db: Database, cdr: Cdr, who: Principal = SYSTEM) -> CdrResult:
    """Rate one CDR in a transaction of its own (what a batch of one does)."""
    return next(rate_all(db, [cdr], batch=1, who=who))


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


def _result(cdr: Cdr, request: Request) -> CdrResult:
    call_id = cdr.body["call_id"]
    if request.error is not None:
        if isinstance(request.error, DomainError):
            e = request.error
            return CdrResult(cdr.line, call_id, "error", detail=f"{e.code}: {e.message}")
        raise request.error  # the database is away: the caller retries
    outcome: CdrOutcome = request.result
    if outcome.status != "rated":
        return CdrResult(cdr.line, call_id, outcome.status, detail=outcome.detail)
    end = outcome.end
    assert end is not None
    short = f", {end['uncollected']} uncollected" if Decimal(end["uncollected"]) else ""
    return CdrResult(cdr.line, call_id, "rated", charge=end["charge"],
                     uncollected=end["uncollected"], currency=end["currency"],
                     detail=f"{end['funding']}, {end['included_minutes']} included min{short}")
