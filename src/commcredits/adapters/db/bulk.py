"""Many rows in one go: ``COPY ... FROM STDIN`` on PostgreSQL, one executemany on SQLite.

Values go through the columns' own types first (``Amount`` → integer millionths, refusing
more than six places; ``UtcDateTime`` → naive UTC), so a bulk write stores exactly what a
row-by-row ``INSERT`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


def _processors(table: sa.Table, columns: Sequence[str],
                dialect: sa.Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns whose type converts values."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, TypeDecorator):
            out.append((i, lambda v, t=kind: t.process_bind_param(v, dialect)))
    return out


def insert(conn: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]],
           columns: Sequence[str] | None = None) -> int:
    """Insert ``rows`` (dicts keyed by column name; missing keys are NULL). Returns the count."""
    rows = list(rows)
    if not rows:
        return 0
    cols = list(columns or rows[0].keys())
    procs = _processors(table, cols, conn.dialect)
    values = []
    for r in rows:
        v = [r.get(c) for c in cols]
        for i, proc in procs:
            v[i] = proc(v[i])
        values.append(v)
    if conn.dialect.name == "postgresql":
        import psycopg
        raw = conn.connection.driver_connection
        assert raw is not None
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
    else:
        marks = ", ".join("?" for _ in cols)
        names = ", ".join(f'"{c}"' for c in cols)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',
                             [tuple(v) for v in values])
    return len(values)
