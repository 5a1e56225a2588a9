"""Named locks across every process that uses the database (PostgreSQL session advisory
locks, keyed by the schema and the name). A lock lives on a connection of its own and dies
with it: a process killed while holding one frees it at once.

SQLite has no such locks; one process (or one machine's processes, writers serialized)
serves an SQLite database, so the lock is a no-op there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

_LOCK = sa.text("SELECT pg_advisory_lock(hashtext(current_schema() || ':' || :name))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtext(current_schema() || ':' || :name))")


@contextlib.contextmanager
def exclusive(engine: sa.Engine, name: str) -> Iterator[None]:
    """Hold the lock ``name`` for the block, waiting while another process holds it."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(_LOCK, {"name": name})
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):  # a dead connection freed it anyway
                conn.execute(_UNLOCK, {"name": name})
