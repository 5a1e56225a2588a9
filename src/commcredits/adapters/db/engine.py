"""Engines for SQLite (embedded default) and PostgreSQL (production).

Concurrency: on PostgreSQL every balance change locks the tenant's wallet row
(``SELECT ... FOR UPDATE``). On SQLite each transaction starts with ``BEGIN IMMEDIATE``, which
takes the database write lock up front, so writers are serialized and never deadlock on lock
upgrades; WAL keeps readers going meanwhile.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine)
    return engine


IDLE_PING_S = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use only when it sat idle for ``IDLE_PING_S``: one
    that has just served a request is alive, and pinging it would add a round trip to every
    transaction of the call path (what ``pool_pre_ping`` did). A connection that dies in
    use is a disconnect error: SQLAlchemy then drops it and every older pooled one."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()  # the ping opened a transaction: end it (autocommit needs so)
        except Exception as e:  # the pool replaces the connection and tries again
            raise sa.exc.DisconnectionError(str(e)) from e


def _sqlite_engine(url: str) -> Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # writers take the lock up front; read-only units of work do not block anyone
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine

