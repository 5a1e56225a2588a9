"""Which process runs the background jobs: exactly one per database.

``commcredits serve --workers N`` starts N processes on one database; each asks for the
jobs lease on every tick and only the holder runs the jobs. The lease dies with its holder,
so another worker takes over within one interval.

* PostgreSQL: a session advisory lock (keyed by the schema, so databases that share a
  server do not share a lease) on a connection the holder keeps open. It holds across every
  instance on every host that uses the database (N ``serve`` instances, each with ``--workers``).
  A holder killed outright (``kill -9``) closes its socket and the server drops the lock at
  once; for a holder whose host vanishes without a word (power, network) the connection
  asks the server to probe it (TCP keepalives, ``tcp_user_timeout``), so the lock is freed
  within about half a minute instead of the kernel's two hours. The lock connection is
  exempt from ``idle_session_timeout``. It must go straight to PostgreSQL (or a session-mode
  pooler): a transaction-mode PgBouncer would hand the lock to another client.
* The jobs themselves lock what they change (the tenant's wallet, ``SKIP LOCKED`` claims),
  so a holder that lost its lease in the middle of a run and a new holder never do a row
  twice; a holder killed mid-job leaves its open transaction rolled back.
* SQLite: an exclusive ``flock`` on ``<database file>.jobs.lock`` (an in-memory database
  belongs to one process anyway).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

_TAKEN = "this process runs the background jobs (jobs lease taken)"
_KEY = "hashtext('commcredits.jobs:' || current_schema())"
# the server notices a holder whose host is gone (no FIN, no RST) in about 10 + 5*3 s
_SESSION = ("SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5",
            "SET tcp_keepalives_count = 3", "SET tcp_user_timeout = 30000",
            "SET idle_session_timeout = 0")


class JobsLease:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None
        self._file: IO[bytes] | None = None

    def hold(self) -> bool:
        """True when this process holds the lease (taking it if it is free)."""
        if self.engine.dialect.name == "postgresql":
            return self._hold_pg()
        return self._hold_file()

    def _hold_pg(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:  # the connection died, and the lock with it
                log.warning("lost the jobs lease's connection; asking again")
                self._drop()
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.DBAPIError:  # the database is away: ask again next tick
            return False
        try:
            for setting in _SESSION:
                conn.exec_driver_sql(setting)
            got = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_KEY})").scalar())
        except sa.exc.DBAPIError:
            conn.close()
            return False
        if got:
            self._conn = conn
            log.info(_TAKEN)
        else:
            conn.close()
        return got

    def _hold_file(self) -> bool:
        if self._file is not None:
            return True
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True
        handle = Path(f"{database}.jobs.lock").open("ab")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        log.info(_TAKEN)
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()  # really closed, not pooled: the lock goes with it
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        if self._conn is not None:  # unlock first: closing frees it only when the server
            with contextlib.suppress(Exception):  # has ended the session, a moment later
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_KEY})")
        self._drop()
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> JobsLease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
