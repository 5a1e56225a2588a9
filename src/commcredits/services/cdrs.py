"""Offline rating of call detail records, for switches that only send CDRs afterwards.

The file is checked whole first: any bad line refuses it (every bad line is listed, nothing
is rated). Then each CDR is rated in its own transaction exactly as a live call that was
granted its full duration (pool, then credits, then overage), idempotent by call id, so an
interrupted import can simply be run again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.domain import calls as rules
from commcredits.domain import text
from commcredits.domain.errors import DomainError, file_refused
from commcredits.services import charging

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

COLUMNS = ("call_id", "tenant_id", "call_type", "from", "to", "upn", "organizer_upn",
           "start_time", "duration_s")
REQUIRED = ("call_id", "tenant_id", "call_type", "to", "start_time", "duration_s")


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
    status: str  # rated | blocked | duplicate
    charge: str | None = None
    detail: str | None = None
    uncollected: str | None = None  # what credits could not pay (usage is never dropped)
    currency: str | None = None


def parse(text: str) -> list[Cdr]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise _error([(1, f"missing columns: {', '.join(missing)}; expected "
                          f"{','.join(COLUMNS)}")])
    problems: list[tuple[int, str]] = []
    cdrs: list[Cdr] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()):
            continue
        wrong: list[str] = []  # every problem of the line, not only the first
        empty = [c for c in REQUIRED if not row.get(c)]
        if empty:
            wrong.append(f"empty {', '.join(empty)}")
        problem = None if empty else _text_problem(row)
        if problem:
            wrong.append(problem)
        if row.get("call_type") and row["call_type"] not in rules.CALL_TYPES:
            wrong.append(f"call_type {row['call_type']!r} is not one of "
                         f"{', '.join(sorted(rules.CALL_TYPES))}")
        start = None
        if row.get("start_time"):
            try:
                start = datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
            except ValueError:
                wrong.append(f"start_time {row['start_time']!r} is not ISO 8601")
        duration = row.get("duration_s", "")
        if duration and (not duration.isdigit() or int(duration) > 7 * 24 * 3600):
            wrong.append(f"duration_s {duration!r} must be whole seconds (at most a week)")
        if row.get("call_id") in seen:
            wrong.append(f"call_id {row['call_id']!r} repeats line {seen[row['call_id']]}")
        if wrong or start is None:
            problems.extend((line, w) for w in wrong)
            continue
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        seen[row["call_id"]] = line
        body = {"call_id": row["call_id"], "tenant_id": row["tenant_id"],
                "call_type": row["call_type"], "from": row.get("from", ""), "to": row["to"],
                "upn": row.get("upn") or None, "organizer_upn": row.get("organizer_upn") or None}
        cdrs.append(Cdr(line, body, start, int(row["duration_s"])))
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


def rate_all(db: Database, cdrs: list[Cdr],
             progress: Callable[[CdrResult], None] | None = None) -> Iterator[CdrResult]:
    for cdr in cdrs:
        result = rate_one(db, cdr)
        if progress:
            progress(result)
        yield result


def rate_one(db: Database, cdr: Cdr) -> CdrResult:
    try:
        return _rate_one(db, cdr)
    except sa.exc.IntegrityError:  # another import rated this call at the same moment
        return CdrResult(cdr.line, cdr.body["call_id"], "duplicate", detail="rated elsewhere")


def _rate_one(db: Database, cdr: Cdr) -> CdrResult:
    call_id = cdr.body["call_id"]
    with db.uow() as uow:
        existing = uow.charging.call(call_id)
        if existing is not None:
            return CdrResult(cdr.line, call_id, "duplicate", detail="already rated")
        try:
            decision = charging.authorize_call(uow, max(cdr.duration_s, 1), cdr.body,
                                               at=cdr.start, happened=True)
            if decision["decision"] == "blocked":
                uow.commit()
                return CdrResult(cdr.line, call_id, "blocked", detail=decision["reason"])
            end = charging.end_call(uow, call_id, cdr.duration_s)
        except DomainError as e:
            return CdrResult(cdr.line, call_id, "error", detail=f"{e.code}: {e.message}")
        uow.commit()
    short = f", {end['uncollected']} uncollected" if Decimal(end["uncollected"]) else ""
    return CdrResult(cdr.line, call_id, "rated", charge=end["charge"],
                     uncollected=end["uncollected"], currency=end["currency"],
                     detail=f"{end['funding']}, {end['included_minutes']} included min{short}")
