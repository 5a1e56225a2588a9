"""Usage reports (SPEC.md §Reports, API.md §Reports): the PSTN and SMS usage exports.

Pure orchestration: the HTTP routes and the ``commcredits report`` commands both use it.

Period (:func:`parse_period`), all dates UTC and inclusive:

* nothing given → the last 28 days; ``days`` (7 or 28 only) → that many calendar days ending
  on ``to`` (default today), today included;
* ``from``/``to`` as ``YYYY-MM-DD``; ``to`` defaults to today; ``from`` without ``to`` is
  allowed, ``days`` together with ``from`` is not;
* ``from`` after ``to``, more than one year (``to - from`` > 366 days), a malformed date, or
  any other ``days`` → ``validation_error``.

A record belongs to the period when its start time falls in it (``first 00:00 <= start <
(last + 1 day) 00:00``).

Rows are generated lazily. :func:`stream` reads the records in pages of :data:`PAGE` rows,
each page in its own short transaction (on SQLite every transaction takes the write lock, so
a slow download must not hold one), so a year of records goes out in constant memory.

Cells are ``str``, ``int`` or ``None``. Money is the exact decimal string in the record's
currency (``"0.04"``), times are ISO 8601 UTC with ``Z`` to the second
(``2030-03-10T12:00:00Z``), durations and segments are integers.

PSTN columns (:data:`PSTN`), exactly as SPEC.md lists them: UsageId, Call ID, Conference ID,
User Location, AAD ObjectId, UPN, User Display Name, Caller ID, Call Type, Number Type,
Domestic/International, Destination Dialed, Destination Number, Start Time, End Time, Duration
Seconds, Connection Fee, Charge, Currency, Capability.

SMS columns (:data:`SMS`), the same shape with what a message has: UsageId, Message ID, User
Location, AAD ObjectId, UPN, User Display Name, Sender ID (the ``from`` number), Message Type
(``sms_out``/``sms_in``), Number Type, Domestic/International, Destination (the peer's
country), Destination Number, Sent Time, Segments, Charge, Currency, Capability. A message
has no conference, no end time, no duration and no connection fee, so those columns are
left out rather than always empty.

Excel (streamed by :mod:`commcredits.adapters.xlsx`): money goes out as **numeric** cells
(so the Charge column sums), formatted with the currency's decimal places (``0.00`` for
USD). The value is never a float: the cell holds the amount's decimal text, so the XML has
the exact digits (``<v>0.04</v>``). Excel keeps 15 significant digits; an amount with more
is written as a text cell so that nothing is ever rounded. Times are real Excel date-times
(UTC, shown ``2030-03-10T12:00:00Z``: the Z marks UTC), and the header row carries an autofilter.

ZIP, as the admin center's "Export to Excel" gives it: see :mod:`report_zip`.

Beyond the contract (``extra``): the PSTN report's JSON rows also carry ``Uncollected``, the
part of the call's price that credits could not pay (the call happened; it is never lost
from the books), and ``Original Charge``, what the call was charged when it settled (a
re-rate, ``services.rerate``, changes ``Charge`` to the corrected price; the two are equal
for a call never corrected). The CSV, Excel and ZIP files keep exactly the 20 columns of
the contract (``Charge`` shows the corrected price); the uncollected amount is in the totals
(:func:`totals`, ``GET .../pstn-usage/totals``, the console's report page and
``commcredits report``), in ``/metrics`` and in each JSON row.

Every report can be narrowed to one user (``upn``, any case): rows, counts, totals and
every download alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain.dates import check_in_span
from commcredits.domain.errors import invalid
from commcredits.domain.money import fmt
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database, UnitOfWork

Cell = str | int | None
Row = tuple[Cell, ...]

DAYS_CHOICES = (7, 28)
DEFAULT_DAYS = 28
MAX_SPAN_DAYS = 366
PAGE = 2000  # records per read transaction while streaming
FORMATS = ("json", "csv", "xlsx", "zip")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# -- the period ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Period:
    """Calendar days ``first`` to ``last``, both included, UTC."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        """First instant in the period."""
        return datetime.combine(self.first, dtime(), UTC)

    @property
    def end(self) -> datetime:
        """First instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), dtime(), UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _date(name: str, value: str) -> date:
    text = value.strip()
    if not _DATE.fullmatch(text):
        raise invalid("validation_error", f"{name} {value[:40]!r} is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise invalid("validation_error",
                      f"{name} {value[:40]!r} is not a valid date (YYYY-MM-DD)") from None
    check_in_span(day, name)
    return day


def _days(value: str | int) -> int:
    text = str(value).strip()
    if text.isascii() and text.isdigit() and int(text) in DAYS_CHOICES:
        return int(text)
    raise invalid("validation_error",
                  f"days must be 7 or 28 (got {text[:20]!r}); use from/to for other periods")


def parse_period(today: date, *, days: str | int | None = None, from_: str | None = None,
                 to: str | None = None) -> Period:
    """The report period from the request's ``days``, ``from`` and ``to`` (empty = absent)."""
    has_days, has_from, has_to = not _blank(days), not _blank(from_), not _blank(to)
    if has_days and has_from:
        raise invalid("validation_error", "give either days or from/to, not both")
    last = _date("to", str(to)) if has_to else today
    if has_from:
        first = _date("from", str(from_))
    else:
        first = last - timedelta(days=(_days(days) if has_days and days is not None
                                       else DEFAULT_DAYS) - 1)
    if first > last:
        raise invalid("validation_error", f"from ({first}) is after to ({last})")
    if (last - first).days > MAX_SPAN_DAYS:
        raise invalid("validation_error",
                      f"a report covers at most one year: from ({first}) and to ({last}) are "
                      f"{(last - first).days} days apart, the limit is {MAX_SPAN_DAYS}")
    return Period(first, last)


def parse_format(value: str | None) -> str:
    fmt_ = (value or "json").strip().lower()
    if fmt_ not in FORMATS:
        raise invalid("validation_error",
                      f"format must be json, csv, xlsx or zip (got {str(value)[:20]!r})")
    return fmt_


# -- the reports ---------------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else fmt(amount, currency)


def _pstn_row(r: Any) -> Row:
    return (r.id, r.ref, r.conference_id, r.user_location, r.aad_object_id, r.upn,
            r.display_name, r.caller_id, r.call_type, r.number_type, r.scope, r.destination,
            r.destination_number, _time(r.start_time), _time(r.end_time), int(r.duration_s),
            _money(r.connection_fee, r.currency), _money(r.charge, r.currency), r.currency,
            r.capability)


def _pstn_extra(r: Any) -> Row:
    original = r.charge if r.original_charge is None else r.original_charge
    return (_money(r.uncollected, r.currency), _money(original, r.currency))


def _sms_row(r: Any) -> Row:
    return (r.id, r.ref, r.user_location, r.aad_object_id, r.upn, r.display_name,
            r.caller_id, r.call_type, r.number_type, r.scope, r.destination, r.destination_number,
            _time(r.start_time), int(r.segments or 0), _money(r.charge, r.currency),
            r.currency, r.capability)


@dataclass(frozen=True, slots=True)
class Report:
    name: str  # pstn-usage | sms-usage: the URL path segment, CLI command and file name
    kind: str  # usage_records.kind
    columns: tuple[str, ...]
    money: frozenset[str]  # columns holding amounts
    integers: frozenset[str]  # columns holding whole numbers
    row: Callable[[Any], Row]
    times: frozenset[str] = frozenset()  # columns holding UTC times
    export_name: str = ""  # the admin center's file stem: PSTN.calls, SMS.messages
    extra: tuple[str, ...] = ()  # JSON-only fields after the contract's columns
    extra_row: Callable[[Any], Row] = lambda r: ()

    @property
    def json_columns(self) -> tuple[str, ...]:
        return self.columns + self.extra


PSTN = Report(
    name="pstn-usage", kind="call",
    columns=("UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
             "User Display Name", "Caller ID", "Call Type", "Number Type",
             "Domestic/International", "Destination Dialed", "Destination Number",
             "Start Time", "End Time", "Duration Seconds", "Connection Fee", "Charge",
             "Currency", "Capability"),
    money=frozenset({"Connection Fee", "Charge"}), integers=frozenset({"Duration Seconds"}),
    row=_pstn_row, times=frozenset({"Start Time", "End Time"}), export_name="PSTN.calls",
    extra=("Uncollected", "Original Charge"), extra_row=_pstn_extra)

SMS = Report(
    name="sms-usage", kind="sms",
    columns=("UsageId", "Message ID", "User Location", "AAD ObjectId", "UPN",
             "User Display Name", "Sender ID", "Message Type", "Number Type",
             "Domestic/International", "Destination", "Destination Number", "Sent Time",
             "Segments", "Charge", "Currency", "Capability"),
    money=frozenset({"Charge"}), integers=frozenset({"Segments"}), row=_sms_row,
    times=frozenset({"Sent Time"}), export_name="SMS.messages")

REPORTS = {r.name: r for r in (PSTN, SMS)}


def check(uow: UnitOfWork, tenant_id: str) -> None:
    """Raise ``not_found`` unless the tenant exists (before any streaming starts)."""
    get_tenant(uow, tenant_id)


def count(uow: UnitOfWork, report: Report, tenant_id: str, period: Period,
          upn: str | None = None) -> int:
    return uow.charging.count_usage(tenant_id, report.kind, period.start, period.end, upn)


def totals(uow: UnitOfWork, report: Report, tenant_id: str, period: Period,
           upn: str | None = None) -> dict[str, Any]:
    """The period's totals: records, seconds (PSTN) or segments (SMS), what was charged and
    what could not be (``uncollected``), as exact decimal strings in the tenant currency."""
    from commcredits.adapters.db.repositories.usage_totals import usage_totals
    currency = get_tenant(uow, tenant_id).currency
    t = usage_totals(uow.conn, tenant_id, report.kind, period.start, period.end, upn)
    out: dict[str, Any] = {"from": period.first.isoformat(), "to": period.last.isoformat(),
                           "user": upn, "currency": currency, "records": t.records}
    if report.kind == "call":
        out["duration_s"] = t.duration_s
    else:
        out["segments"] = t.segments
    return {**out, "charge": fmt(t.charge, currency),
            "uncollected": fmt(t.uncollected, currency)}


def rows(uow: UnitOfWork, report: Report, tenant_id: str, period: Period,
         upn: str | None = None, extras: bool = False) -> Iterator[Row]:
    """The report's rows in time order, inside one transaction (``uow`` stays open); with
    the ``extra`` cells after the columns when ``extras``."""
    for record in uow.charging.usage(tenant_id, report.kind, period.start, period.end,
                                     upn=upn):
        yield report.row(record) + report.extra_row(record) if extras else report.row(record)


def stream(db: Database, report: Report, tenant_id: str, period: Period,
           page: int = PAGE, *, upn: str | None = None, extras: bool = False) -> Export:
    """The report's rows in time order, lazily (see :class:`Export`): one user's when
    ``upn`` is given; with the ``extra`` cells after the columns when ``extras`` (JSON)."""
    return Export(db, report, tenant_id, period, page, upn=upn, extras=extras)


class Export:
    """A report being exported: iterate it for its rows; :func:`csv_bytes` asks it for CSV.

    On PostgreSQL the rows come from one read-only transaction through a server-side cursor,
    already formatted by the database, and CSV comes straight out of ``COPY``
    (:mod:`commcredits.adapters.db.usage_export`). On SQLite every transaction takes the
    write lock, so the records are read ``page`` at a time, each page in its own short
    transaction; paging resumes at the last start time seen and skips the records already
    sent with that exact start time (by id, so it does not depend on how the database
    collates ids).
    """

    def __init__(self, db: Database, report: Report, tenant_id: str, period: Period,
                 page: int = PAGE, *, upn: str | None = None, extras: bool = False) -> None:
        self.db, self.report, self.tenant_id, self.period = db, report, tenant_id, period
        self.page, self.upn, self.extras = page, upn or None, extras
        self.on_rows: Callable[[int], None] | None = None  # told how many rows went out

    @property
    def postgres(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    def __iter__(self) -> Iterator[Row]:
        rows_ = self._database_rows() if self.postgres else self._pages()
        return rows_ if self.on_rows is None else each_row(rows_, self.on_rows)

    def _database_rows(self) -> Iterator[Row]:
        from commcredits.adapters.db import usage_export
        with self.db.uow(readonly=True) as uow:
            currency = get_tenant(uow, self.tenant_id).currency
            yield from usage_export.rows(uow.conn, self.tenant_id, currency, self.report.kind,
                                         self.period.start, self.period.end, upn=self.upn,
                                         extras=self.extras)

    def csv_chunks(self) -> Iterator[bytes] | None:
        """The CSV data lines from the database, or None where it cannot make them."""
        if not self.postgres or self.extras:
            return None
        return self._copy()

    def _copy(self) -> Iterator[bytes]:
        from commcredits.adapters.db import usage_export
        with self.db.uow(readonly=True) as uow:
            currency = get_tenant(uow, self.tenant_id).currency
            yield from usage_export.csv_chunks(uow.conn, self.tenant_id, currency,
                                               self.report.kind, self.period.start,
                                               self.period.end, on_rows=self.on_rows,
                                               upn=self.upn)

    def _pages(self) -> Iterator[Row]:
        db, report, tenant_id, period, page = (self.db, self.report, self.tenant_id,
                                               self.period, self.page)
        after: datetime | None = None
        sent_at_after: set[str] = set()
        while True:
            batch: list[Any] = []
            with db.uow() as uow:
                records = uow.charging.usage(tenant_id, report.kind, after or period.start,
                                             period.end, batch=min(page, 1000), upn=self.upn)
                try:
                    for record in records:
                        if record.start_time == after and record.id in sent_at_after:
                            continue
                        batch.append(record)
                        if len(batch) >= page:
                            break
                finally:
                    records.close()
            for record in batch:
                if record.start_time != after:
                    after, sent_at_after = record.start_time, set()
                sent_at_after.add(record.id)
                yield report.row(record) + report.extra_row(record) if self.extras \
                    else report.row(record)
            if len(batch) < page:
                return


def as_dicts(report: Report, rows_: Iterable[Row],
             extras: bool = False) -> Iterator[dict[str, Cell]]:
    """Rows as objects keyed by the columns (and the ``extra`` fields when ``extras``)."""
    names = report.json_columns if extras else report.columns
    for row in rows_:
        yield dict(zip(names, row, strict=True))


def each_row(rows_: Iterable[Row], tick: Callable[[int], None]) -> Iterator[Row]:
    """``rows_``, telling ``tick`` of each row as it goes."""
    for row in rows_:
        tick(1)
        yield row


def file_name(report: Report, tenant_id: str, period: Period, ext: str) -> str:
    return f"{report.name}_{tenant_id}_{period.first}_{period.last}.{ext}"
