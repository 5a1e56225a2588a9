"""The charging engine's libpq wire (``adapters/db/pg_wire.py``) on a real PostgreSQL: text
arrays cross exactly whatever they hold, errors are psycopg's classes, and a transaction that
failed is never reported as committed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from commcredits.adapters.db import pg_wire
from tests.conftest import PG_SERVER


@pytest.fixture
def raw() -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(PG_SERVER.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        yield conn
    finally:
        conn.close()


def test_text_arrays_cross_exactly(raw: psycopg.Connection) -> None:
    values = ['a"b', "back\\slash", "comma,brace}{", "", "NULL", "ünïcode", " spaced "]
    got = pg_wire.query(raw, b"SELECT array_to_json($1::text[])::text",
                        [pg_wire.array(values)])
    assert got is not None and json.loads(got) == values
    assert pg_wire.query(raw, b"SELECT $1::text[] IS NULL", [pg_wire.array(None)]) == b"t"
    assert pg_wire.query(raw, b"SELECT cardinality($1::text[])", [pg_wire.array([])]) == b"0"


def test_errors_are_psycopg_classes_and_a_failed_transaction_never_commits(
        raw: psycopg.Connection) -> None:
    pg_wire.command(raw, b"BEGIN")
    pg_wire.query(raw, b"CREATE TEMP TABLE wire_t (id int PRIMARY KEY)", [])
    pg_wire.query(raw, b"INSERT INTO wire_t VALUES ($1::int)", [b"1"])
    with pytest.raises(errors.UniqueViolation):
        pg_wire.query(raw, b"INSERT INTO wire_t VALUES ($1::int)", [b"1"])
    with pytest.raises(errors.InFailedSqlTransaction):
        pg_wire.commit(raw)  # COMMIT would only have rolled back: it is refused instead
    raw.rollback()
    assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_commit_commits_and_psycopg_knows(raw: psycopg.Connection) -> None:
    pg_wire.command(raw, b"BEGIN")
    pg_wire.query(raw, b"CREATE TEMP TABLE wire_c (id int)", [])
    assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    pg_wire.commit(raw)
    assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    raw.commit()  # nothing left to commit: psycopg sends nothing and raises nothing
    assert raw.execute("SELECT count(*) FROM wire_c").fetchone() == (0,)


def test_a_lost_connection_is_an_operational_error_and_broken(raw: psycopg.Connection) -> None:
    other = psycopg.connect(PG_SERVER.replace("postgresql+psycopg://", "postgresql://", 1),
                            autocommit=True)
    try:
        other.execute("SELECT pg_terminate_backend(%s)", (raw.info.backend_pid,))
    finally:
        other.close()
    with pytest.raises(psycopg.OperationalError):
        pg_wire.query(raw, b"SELECT 1", [])
    assert raw.broken
