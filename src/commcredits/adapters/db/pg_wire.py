"""The charging engine's statements straight through libpq (psycopg's C ``pgconn``).

A charging batch sends four messages: BEGIN, the load, the writes, COMMIT. Through psycopg's
cursors and pipelines each costs more Python than PostgreSQL's own work on a small batch
(measured: two pipelines and a COMMIT, 0.32 ms of Python and 1.18 ms of wall time, against
0.014 ms and 0.06 ms a statement through ``pgconn``; ``bench/batches.py`` has the batch's
whole fixed cost). So the engine speaks to libpq itself, on the very connection psycopg and
SQLAlchemy hold for the batch: parameters and results in text, waits in ``select`` (the GIL
is free while the database works). The statements are one function call each, sent unnamed:
their own parse and plan is a few microseconds, and the statements inside the functions are
planned once per connection by PL/pgSQL (generic plans). Named prepared statements were
tried and dropped: psycopg answers a ROLLBACK by deallocating every prepared statement of
the session (its own cache's rule), and a batch's next statement then failed its
transaction. Each statement holds psycopg's connection lock, as psycopg's cursors do: a big
batch writes from a thread of its own while a read may be asked for on the deciding one. Its
errors are psycopg's own classes (``errors.error_from_result``), so what maps them above (a
unique violation is an ``IntegrityError``, a lost connection an ``OperationalError`` and a
broken connection) is unchanged. psycopg reads the transaction's state from libpq, so a
BEGIN or COMMIT sent here is one it knows about.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

from psycopg import errors, pq

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


def array(values: Sequence[str] | None) -> bytes | None:
    """A ``text[]`` literal of ``values`` (None: SQL NULL)."""
    if values is None:
        return None
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return ("{" + ",".join(quoted) + "}").encode()


def command(raw: Any, sql: bytes) -> None:
    """A statement without parameters or result (BEGIN, COMMIT)."""
    with raw.lock:  # psycopg's own: one statement at a time on the connection, any thread
        pg = raw.pgconn
        pg.send_query_params(sql, None)
        _finish(raw, pg)


def commit(raw: Any) -> None:
    """COMMIT, or raise: a transaction that already failed would only roll back."""
    with raw.lock:
        pg = raw.pgconn
        status = pg.transaction_status
        if status == pq.TransactionStatus.IDLE:
            return
        if status == pq.TransactionStatus.INERROR:
            raise errors.InFailedSqlTransaction(
                "the batch's transaction failed; nothing committed")
        pg.send_query_params(b"COMMIT", None)
        result = _finish(raw, pg)
    if result is None or result.command_status != b"COMMIT":
        raise errors.TransactionRollback("COMMIT rolled back")


def query(raw: Any, sql: bytes, params: Sequence[bytes | None]) -> bytes | None:
    """Run ``sql`` on ``raw`` with text ``params``; the first column of its first row, as
    bytes (None: no row, or NULL)."""
    with raw.lock:
        pg = raw.pgconn
        pg.send_query_params(sql, params)
        result = _finish(raw, pg)
    if result is None or result.ntuples == 0:
        return None
    value: bytes | None = result.get_value(0, 0)
    return value


def _finish(raw: Any, pg: Any) -> Any:
    """Send what is queued, wait for every result of the statement, and return the last;
    an error result is raised as psycopg's class for its SQLSTATE."""
    fd = pg.socket  # libpq's failures raise psycopg's OperationalError
    while pg.flush():
        select.select([], [fd], [])
    last, failed = None, None
    while True:
        while pg.is_busy():
            select.select([fd], [], [])
            pg.consume_input()
        result = pg.get_result()
        if result is None:
            break
        if result.status in _OK:
            last = result
        elif failed is None:
            failed = result
    if failed is not None:
        raise errors.error_from_result(failed, encoding=raw.info.encoding)
    return last
