"""Shared pieces: the metric record, timing helpers, and throw-away databases to measure on.

SQLite databases live in a temporary directory (copied from one migrated template); PostgreSQL
databases are a schema of their own on 127.0.0.1:5432 (user ``postgres``, database ``test``),
dropped afterwards, like the tests do.
"""

from __future__ import annotations

import math
import secrets
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from commcredits.adapters.clock import ManualClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.migrate import upgrade
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.runtime import Runtime

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    value: float
    unit: str
    note: str


def pg_name(name: str, backend: str) -> str:
    """SQLite metrics keep the plain name; PostgreSQL ones get a ``pg_`` prefix."""
    return name if backend == "sqlite" else f"pg_{name}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


class Databases:
    """Hands out fresh, migrated, empty databases for one benchmark run."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="commcredits-bench-")
        self._dir = Path(self._tmp.name)
        self._template: Path | None = None
        self._count = 0
        self._pg_engine: sa.Engine | None = None

    def close(self) -> None:
        if self._pg_engine is not None:
            self._pg_engine.dispose()
        self._tmp.cleanup()

    @contextmanager
    def url(self, backend: str) -> Iterator[str]:
        if backend == "sqlite":
            yield self._sqlite_url()
        else:
            with self._pg_schema() as url:
                yield url

    def _sqlite_url(self) -> str:
        if self._template is None:
            self._template = self._dir / "template.sqlite3"
            upgrade(f"sqlite:///{self._template}")
        self._count += 1
        target = self._dir / f"bench-{self._count}.sqlite3"
        shutil.copy(self._template, target)
        return f"sqlite:///{target}"

    @contextmanager
    def _pg_schema(self) -> Iterator[str]:
        if self._pg_engine is None:
            self._pg_engine = sa.create_engine(PG_SERVER)
        schema = f"cc_bench_{secrets.token_hex(4)}"
        try:
            with self._pg_engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        except sa.exc.OperationalError as e:
            raise SystemExit(f"PostgreSQL is not reachable at {PG_SERVER}: {e}") from None
        try:
            url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
            upgrade(url)
            yield url
        finally:
            with self._pg_engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def runtime(url: str) -> Iterator[Runtime]:
    """A Runtime like the tests' fixture: manual clock, test payment gateway, no mailer."""
    settings = Settings(db=url, manual_clock=True, smtp_url=None, min_order=50)
    rt = Runtime(settings, Database(make_engine(settings.db), ManualClock()), TestGateway(), None)
    try:
        yield rt
    finally:
        rt.db.engine.dispose()
