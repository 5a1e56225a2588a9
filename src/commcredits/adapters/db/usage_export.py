"""Usage report rows formatted by PostgreSQL itself, for exports of millions of rows.

The database renders every cell as the report's text (times ``2030-03-10T12:00:00Z``, money
with the currency's places, exact: amounts are integers of millionths) and either hands back
ready CSV lines through ``COPY ... TO STDOUT`` or plain tuples through a server-side cursor.
No SQLAlchemy row object is made per record. The Python rendering in
:mod:`commcredits.services.reports` stays the reference; the report tests run against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.types import UtcDateTime
from commcredits.domain import csv_cells

_TIME = "to_char({}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
# exact: amounts are whole millionths and a currency has at most 6 places (CLDR: 0-4); the
# places are the record's own currency's, like fmt() (the tenant's, by default)
_MONEY = "round({}::numeric / 1000000, {places})::text"


@lru_cache(maxsize=64)
def _places_by_currency(usual: str) -> str:
    """A CASE giving each ISO 4217 currency's decimal places (CLDR), ``usual`` (the
    tenant's currency) tested first: every record of a tenant is in its currency, and one
    comparison per cell costs far less than thirty."""
    from babel.numbers import list_currencies

    from commcredits.domain.money import is_currency, places
    odd = sorted((c, places(c)) for c in list_currencies() if places(c) != 2)
    first = f"WHEN '{usual}' THEN {places(usual)} " if is_currency(usual) else ""
    return ("CASE r.currency " + first + " ".join(f"WHEN '{c}' THEN {p}" for c, p in odd)
            + " ELSE 2 END")

# the report's columns as SQL expressions over ``usage_records r`` (and its user ``u``, for
# the Entra ID object id), in order (see services/reports.py)
_AAD = "u.aad_object_id"
COLUMNS: dict[str, tuple[str, ...]] = {
    "call": ("r.id", "r.ref", "r.conference_id", "r.user_location", _AAD, "r.upn",
             "r.display_name", "r.caller_id", "r.call_type", "r.number_type", "r.scope",
             "r.destination", "r.destination_number", _TIME.format("r.start_time"),
             _TIME.format("r.end_time"), "r.duration_s",
             _MONEY.replace("{}", "r.connection_fee"), _MONEY.replace("{}", "r.charge"),
             "r.currency", "r.capability"),
    "sms": ("r.id", "r.ref", "r.user_location", _AAD, "r.upn", "r.display_name",
            "r.caller_id", "r.call_type", "r.number_type", "r.scope", "r.destination",
            "r.destination_number", _TIME.format("r.start_time"), "COALESCE(r.segments, 0)",
            _MONEY.replace("{}", "r.charge"), "r.currency", "r.capability"),
}
# beyond the export's contract columns: what JSON rows add (services/reports.py ``extra``)
EXTRA: dict[str, tuple[str, ...]] = {
    "call": (_MONEY.replace("{}", "r.uncollected"),
             _MONEY.replace("{}", "COALESCE(r.original_charge, r.charge)")),
    "sms": ()}
_TEXT_COLUMNS = {"r.id", "r.ref", "r.conference_id", "r.user_location", _AAD, "r.upn",
                 "r.display_name", "r.caller_id", "r.call_type", "r.number_type", "r.scope",
                 "r.destination", "r.destination_number", "r.currency", "r.capability"}


# domain.csv_cells.neutral in SQL, for the cells COPY writes: the same starts (by their code:
# ascii() is the cheapest test of a first character), the same number pattern, the same quote;
# the export tests compare both renderings byte for byte
_FORMULA_START = ", ".join(str(ord(c)) for c in csv_cells.FORMULA_STARTS)
# (a sign and digits, as every E.164 number is, is told by rtrim without the regex)
_NEUTRAL = (f"CASE WHEN coalesce(ascii({{0}}), 0) NOT IN ({_FORMULA_START}) THEN {{0}} "
            f"WHEN length({{0}}) > 1 AND rtrim({{0}}, '0123456789') IN ('+', '-') THEN {{0}} "
            f"WHEN {{0}} ~ '^{csv_cells.NUMBER_PATTERN}$' THEN {{0}} "
            f"ELSE chr({ord(csv_cells.QUOTE)}) || {{0}} END")
# the cells a client or an operator writes (ids, names, numbers, deck destinations): the
# others are the service's own words (usage ids, codes, enums, the Entra ID GUID), which
# never start with a formula character, and are left out of the test for speed
_FREE_TEXT = {"r.ref", "r.conference_id", "r.upn", "r.display_name", "r.caller_id",
              "r.scope", "r.destination", "r.destination_number"}


def _select(kind: str, currency: str, *, csv: bool, upn: str | None = None,
            extras: bool = False) -> str:
    cols = tuple(c.replace("{places}", _places_by_currency(currency))
                 for c in COLUMNS[kind] + (EXTRA[kind] if extras else ()))
    if csv:  # csv.writer leaves an empty string unquoted; COPY would write ""
        cols = tuple((_NEUTRAL if c in _FREE_TEXT else "{0}").format(f"NULLIF({c}, '')")
                     if c in _TEXT_COLUMNS else c for c in cols)
    return (f"SELECT {', '.join(cols)} FROM usage_records r "
            "LEFT JOIN users u ON u.id = r.user_id AND u.tenant_id = r.tenant_id "
            "WHERE r.tenant_id = %(tenant)s AND r.kind = %(kind)s "
            "AND r.start_time >= %(start)s AND r.start_time < %(end)s "
            + ("AND lower(r.upn) = %(upn)s " if upn else "")
            + "ORDER BY r.start_time, r.id")


def _params(tenant_id: str, kind: str, start: datetime, end: datetime,
            upn: str | None = None) -> dict[str, Any]:
    utc = UtcDateTime()
    return {"tenant": tenant_id, "kind": kind, "start": utc.process_bind_param(start, None),
            "end": utc.process_bind_param(end, None), "upn": (upn or "").lower()}


def _raw(conn: sa.Connection) -> Any:
    """The psycopg connection, with JIT off for this transaction (compiling the row
    expressions costs more than it saves: measured 250k rows/s without, 160k with)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("SET LOCAL jit = off")
    return raw


def csv_chunks(conn: sa.Connection, tenant_id: str, currency: str, kind: str,
               start: datetime, end: datetime, chunk: int = 256 * 1024,
               on_rows: Callable[[int], None] | None = None,
               upn: str | None = None) -> Iterator[bytes]:
    """The report's CSV data lines (RFC 4180, CRLF), about ``chunk`` bytes at a time;
    ``on_rows`` is told how many rows each piece holds; ``upn``: one user's (any case)."""
    sql = f"COPY ({_select(kind, currency, csv=True, upn=upn)}) TO STDOUT (FORMAT csv)"
    params = _params(tenant_id, kind, start, end, upn)
    with _raw(conn).cursor() as cur, cur.copy(sql, params) as copy:
        out = bytearray()
        n = 0
        for line in copy:  # one message per row, ending in a bare LF
            out += line[:-1]
            out += b"\r\n"
            n += 1
            if len(out) >= chunk:
                if on_rows:
                    on_rows(n)
                yield bytes(out)
                out.clear()
                n = 0
        if out:
            if on_rows:
                on_rows(n)
            yield bytes(out)


def rows(conn: sa.Connection, tenant_id: str, currency: str, kind: str, start: datetime,
         end: datetime, batch: int = 5000, upn: str | None = None,
         extras: bool = False) -> Iterator[tuple[Any, ...]]:
    """The report's rows as tuples of cells, through a server-side cursor (with the
    :data:`EXTRA` cells after the contract's columns when ``extras``)."""
    with _raw(conn).cursor(name="usage_export") as cur:
        cur.itersize = batch
        cur.execute(_select(kind, currency, csv=False, upn=upn, extras=extras),
                    _params(tenant_id, kind, start, end, upn))
        while page := cur.fetchmany(batch):
            yield from page
