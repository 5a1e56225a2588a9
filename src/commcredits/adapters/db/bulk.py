"""Many rows in one go: ``COPY ... FROM STDIN`` on PostgreSQL, one executemany on SQLite.

Values go through the columns' own types first (``Amount`` → integer millionths, refusing
more than six places; ``UtcDateTime`` → naive UTC), so a bulk write stores exactly what a
row-by-row ``INSERT`` would. The two money and time types have direct converters here (the
same rules, without the generic ``TypeDecorator`` call per value): an import writes
millions of values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from commcredits.adapters.db.types import SCALE, Amount, UtcDateTime


def _millionths(value: Any, _exact: Amount = Amount()) -> int | None:
    if type(value) is Decimal:
        scaled = value.scaleb(SCALE)
        whole = int(scaled)
        if whole == scaled:
            return whole
    return _exact.process_bind_param(value, None)  # None, int, or the error it raises


def _naive_utc(value: Any, _exact: UtcDateTime = UtcDateTime()) -> datetime | None:
    if type(value) is datetime and value.tzinfo is UTC:
        return value.replace(tzinfo=None)
    return _exact.process_bind_param(value, None)


def _processors(table: sa.Table, columns: Sequence[str],
                dialect: sa.Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns whose type converts values. SQLite: the
    dialect's own full chain (its DATETIME is text in one exact format)."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if dialect.name != "postgresql":
            proc = kind.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                out.append((i, proc))
        elif isinstance(kind, Amount):
            out.append((i, _millionths))
        elif isinstance(kind, UtcDateTime):
            out.append((i, _naive_utc))
        elif isinstance(kind, TypeDecorator):
            out.append((i, lambda v, t=kind: t.process_bind_param(v, dialect)))
    return out


def prepare(dialect: sa.Dialect, table: sa.Table, rows: Iterable[Mapping[str, Any]],
            columns: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """(columns, values ready for the driver) of ``rows`` (dicts keyed by column name;
    missing keys are NULL)."""
    rows = list(rows)
    if not rows:
        return [], []
    cols = list(columns or rows[0].keys())
    procs = _processors(table, cols, dialect)
    wanted = set(cols)
    get = itemgetter(*cols) if len(cols) > 1 else (lambda r: (r[cols[0]],))
    values = []
    for r in rows:
        v = list(get(r)) if r.keys() >= wanted else [r.get(c) for c in cols]
        for i, proc in procs:
            v[i] = proc(v[i])
        values.append(v)
    return cols, values


def copy(raw: Any, table: sa.Table, cols: Sequence[str], values: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: prepared ``values`` by ``COPY`` on the psycopg connection ``raw`` (which may
    be used from another thread than the one that prepared them)."""
    import psycopg
    names = ", ".join(f'"{c}"' for c in cols)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        with raw.cursor() as cur, cur.copy(statement) as cp:
            for v in values:
                cp.write_row(v)
    except psycopg.errors.IntegrityError as e:  # as SQLAlchemy would raise it, so that
        # callers catch one kind (a concurrent import storing the same call first)
        raise sa.exc.IntegrityError(statement, None, e) from e
    except psycopg.errors.OperationalError as e:
        raise sa.exc.OperationalError(statement, None, e) from e


def insert(conn: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]],
           columns: Sequence[str] | None = None) -> int:
    """Insert ``rows`` (dicts keyed by column name; missing keys are NULL). Returns the count."""
    cols, values = prepare(conn.dialect, table, rows, columns)
    if not values:
        return 0
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        copy(raw, table, cols, values)
    else:
        conn.exec_driver_sql(*insert_sql(table, cols, values))
    return len(values)


def insert_sql(table: sa.Table, cols: Sequence[str], values: Iterable[Sequence[Any]]
               ) -> tuple[str, list[tuple[Any, ...]]]:
    """SQLite: one ``INSERT`` executed for every row of prepared ``values``."""
    names = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', [tuple(v) for v in values]


def analyze(conn: sa.Connection, tables: Sequence[sa.Table]) -> bool:
    """PostgreSQL: refresh the planner's statistics of ``tables`` after a big load (what
    autovacuum does later; until then a plan made for an empty table can join a million rows
    to a million). False when not allowed (not the tables' owner) or not PostgreSQL."""
    if conn.dialect.name != "postgresql":
        return False
    try:
        with conn.begin_nested():
            for table in tables:
                conn.exec_driver_sql(f'ANALYZE "{table.name}"')
    except sa.exc.DBAPIError:
        return False
    return True
