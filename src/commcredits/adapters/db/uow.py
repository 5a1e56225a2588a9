"""The unit of work: one database transaction, the repositories over it, and ``now``.

Services receive a ``UnitOfWork``; entry points open one per request or job step::

    with db.uow() as uow:
        credits.place_order(uow, ...)
        uow.commit()

Leaving the block without ``commit()`` rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commcredits.adapters.clock import Clock, ManualClock, SystemClock
from commcredits.adapters.db.repositories.access import AccessRepo
from commcredits.adapters.db.repositories.audit import AuditRepo
from commcredits.adapters.db.repositories.bus import BusRepo
from commcredits.adapters.db.repositories.charging import ChargingRepo
from commcredits.adapters.db.repositories.credits import CreditsRepo
from commcredits.adapters.db.repositories.directory import DirectoryRepo
from commcredits.adapters.db.repositories.notifications import NotificationRepo
from commcredits.adapters.db.repositories.operators import OperatorAdminRepo
from commcredits.adapters.db.repositories.payments import PaymentRepo
from commcredits.adapters.db.repositories.rating import DeckCache, RateRepo
from commcredits.adapters.db.repositories.rerates import RerateRepo
from commcredits.adapters.db.repositories.switching import SwitchingRepo
from commcredits.adapters.db.repositories.tenants import TenantRepo


class UnitOfWork:
    now: datetime

    def __init__(self, engine: Engine, clock: Clock, decks: DeckCache,
                 readonly: bool = False, autocommit: bool = False) -> None:
        self._engine = engine
        self._readonly = readonly or autocommit
        self._autocommit = autocommit
        self.clock = clock
        self._decks = decks
        self.conn: sa.Connection
        self.actor: object = None  # who acts, for the audit log (services.audit.Actor)

    def __enter__(self) -> UnitOfWork:
        self.conn = self._engine.connect()
        if self._autocommit:  # each statement on its own: no BEGIN and no ROLLBACK trip
            self.conn = self.conn.execution_options(isolation_level="AUTOCOMMIT",
                                                    readonly=True)
        elif self._readonly:
            self.conn = self.conn.execution_options(readonly=True)
        self._tx = self.conn.begin()
        self.now = self.clock.now(self.conn)
        self.postgres = self.conn.dialect.name == "postgresql"
        self.tenants = TenantRepo(self.conn, self.postgres)
        self.directory = DirectoryRepo(self.conn)
        self.credits = CreditsRepo(self.conn, self.postgres)
        self.access = AccessRepo(self.conn)
        self.audit = AuditRepo(self.conn)
        self.operator_admins = OperatorAdminRepo(self.conn)
        self.notifications = NotificationRepo(self.conn, self.postgres)
        self.rates = RateRepo(self.conn, self._decks)
        self.charging = ChargingRepo(self.conn, self.postgres)
        self.switching = SwitchingRepo(self.conn)
        self.payments = PaymentRepo(self.conn)
        self.rerates = RerateRepo(self.conn)  # re-rating runs and corrections
        self.bus = BusRepo(self.conn, self.postgres)  # domain events, ingest progress
        self.recharges_requested: set[str] = set()  # tenants to recharge after commit
        self.cuts_requested: set[str] = set()  # switch cuts to push after commit
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()

    def commit(self) -> None:
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.rollback()


class Database:
    """Owns the engine and the clock; hands out units of work."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.decks = DeckCache()

    @contextmanager
    def uow(self, *, readonly: bool = False, single: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work. ``readonly`` ones never commit and, on SQLite, take no write
        lock (PostgreSQL needs no hint). ``single``: a read of one statement, run in
        autocommit (one round trip instead of BEGIN, the read and ROLLBACK); nothing it reads
        is seen in one snapshot with anything else."""
        with UnitOfWork(self.engine, self.clock, self.decks, readonly, single) as uow:
            yield uow

    @contextmanager
    def batch(self) -> Iterator[tuple[UnitOfWork, Any]]:
        """A unit of work and the bulk store over its connection (``batch_store``), for a
        charging batch. The store's own driver errors come out as SQLAlchemy's (the same
        ``IntegrityError`` or ``OperationalError`` a repository would raise), and a
        connection that broke under them is dropped from the pool."""
        from commcredits.adapters.db.batch_store import PgBatchStore, SqliteBatchStore
        with self.uow() as uow:
            if not uow.postgres:
                yield uow, SqliteBatchStore(uow.conn)
                return
            import psycopg
            raw = uow.conn.connection.driver_connection
            try:
                yield uow, PgBatchStore(raw)
            except psycopg.Error as e:
                broken = raw is None or raw.broken or raw.closed
                if broken:
                    uow.conn.invalidate()
                raise sa.exc.DBAPIError.instance(
                    None, None, e, psycopg.Error, connection_invalidated=broken,
                    dialect=uow.conn.dialect) from e

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """A lock held across every process of the database (``adapters/db/locks.py``)."""
        from commcredits.adapters.db.locks import exclusive
        return exclusive(self.engine, name)

    @property
    def manual_clock(self) -> bool:
        return isinstance(self.clock, ManualClock)
