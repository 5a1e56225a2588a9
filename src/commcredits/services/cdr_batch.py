"""A unit of work for rating many CDRs in one transaction with the live charging code.

:class:`BatchWork` looks like a :class:`~commcredits.adapters.db.uow.UnitOfWork` to
``charging.authorize_call`` / ``charging.end_call``, so every CDR is rated by exactly the
rules of a live call. What those functions read often (tenant, wallet, lots, pool counters,
users, numbers, the rate deck) is read once per batch and kept current in memory; what they
write (calls, usage records, ledger transactions and postings, lot remainders, wallets, pool
counters) is collected and written at the end in bulk (``COPY`` on PostgreSQL). Anything else
goes to the real repositories, after the collected writes have been flushed, so no read ever
sees a stale row.

Safety: the caller locks every wallet of the batch up front, in tenant id order (the order
live calls cannot invert, since they lock one wallet at a time), and pool counters are only
locked under their tenant's wallet lock, as in the live path.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db import bulk
from commcredits.adapters.db.schema import (
    calls,
    ledger_postings,
    ledger_transactions,
    lots,
    usage_records,
)
from commcredits.domain.lots import Lot
from commcredits.services.cdr_batch_views import (
    Charging,
    Credits,
    Directory,
    Passthrough,
    Rates,
    Row,
    Tenants,
)

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork
    from commcredits.domain.tenancy import Tenant


_CALL_COLUMNS = [c.name for c in calls.columns]
_USAGE_COLUMNS = [c.name for c in usage_records.columns if c.name != "segments"]
_POSTING_COLUMNS = ["transaction_id", "tenant_id", "debit_account", "credit_account", "amount"]


def _copy(raw: Any, jobs: list[tuple[sa.Table, list[str], list[list[Any]]]]) -> None:
    """The ``COPY`` of each table's rows, in order (transactions before their postings);
    ``bulk.copy`` raises a conflict as SQLAlchemy's ``IntegrityError`` (a concurrent import)."""
    for table, cols, values in jobs:
        if values:
            bulk.copy(raw, table, cols, values)


class BatchWork:
    """One batch's view of the database over the real unit of work ``uow`` (same
    transaction). Call :meth:`flush` before committing ``uow``."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.conn = uow.conn
        self.now = uow.now
        self.postgres = uow.postgres
        self.clock = uow.clock
        self.recharges_requested = uow.recharges_requested
        self.day = uow.now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.writes = 0
        self.tenant_cache: dict[str, Tenant | None] = {}
        self.wallets: dict[str, WalletRow] = {}
        self.lots: dict[str, list[Lot]] = {}
        self.pools: dict[tuple[str, str, str], Row] = {}
        self.reads: dict[tuple[Any, ...], Any] = {}
        self.user_base: dict[tuple[str, str], Decimal] = {}
        self.user_spend: dict[tuple[str, str], Decimal] = {}
        self.stored_calls: dict[str, Row] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self._reset_pending()
        self.tenants = Tenants(self, uow.tenants)
        self.credits = Credits(self, uow.credits)
        self.charging = Charging(self, uow.charging)
        self.directory = Directory(self, uow.directory)
        self.rates = Rates(self, uow.rates)
        self.notifications = Passthrough(self, uow.notifications)
        self.access = Passthrough(self, uow.access)
        self.bus = Passthrough(self, uow.bus)

    def _reset_pending(self) -> None:
        self.calls: dict[str, Row] = {}
        self.usage: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.postings: list[dict[str, Any]] = []
        self.dirty_lots: dict[str, Decimal] = {}
        self.dirty_wallets: set[str] = set()
        self.dirty_pools: set[tuple[str, str, str]] = set()

    def wrote(self) -> None:
        self.writes += 1

    def lock_wallets(self, tenant_ids: set[str]) -> None:
        """Take every wallet lock of the batch now, in one order (no deadlock between two
        imports); a tenant that does not exist is simply not locked."""
        for tid in sorted(tenant_ids):
            if self.tenants.get(tid) is not None:
                self.tenants.wallet(tid, lock=True)

    def send(self, *, background: bool = False) -> None:
        """Write the rows collected so far (the calls as they are now). ``background``: on
        PostgreSQL the ``COPY`` runs on a thread of this batch, on the batch's own connection
        and transaction, while the caller rates on (memory only); anything that needs the
        connection waits for it first (:meth:`wait`)."""
        self.wait()
        dialect = self.conn.dialect
        jobs = [(table, *bulk.prepare(dialect, table, rows, cols)) for table, rows, cols in (
            (calls, self.calls.values(), _CALL_COLUMNS),
            (usage_records, self.usage, _USAGE_COLUMNS),
            (ledger_transactions, self.transactions, None),
            (ledger_postings, self.postings, _POSTING_COLUMNS))]
        self.stored_calls.update(self.calls)
        self.calls, self.usage, self.transactions, self.postings = {}, [], [], []
        if not self.postgres:
            for table, cols, values in jobs:
                if values:
                    self.conn.exec_driver_sql(*bulk.insert_sql(table, cols, values))
            return
        raw = self.conn.connection.driver_connection
        if background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="cdr-copy")
            self._pending = self._writer.submit(_copy, raw, jobs)
        else:
            _copy(raw, jobs)

    def wait(self) -> None:
        """Wait for a background ``COPY`` (raising what it raised)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Leave the connection free whatever happened (before a rollback)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            wait([pending])
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def preload_users(self, bodies: list[dict[str, Any]]) -> None:
        """Read the users the CDRs name, one query per tenant that exists."""
        upns: dict[str, set[str]] = {}
        for body in bodies:
            for field in ("upn", "organizer_upn"):
                if body.get(field) and body["tenant_id"] in self.wallets:
                    upns.setdefault(body["tenant_id"], set()).add(body[field])
        for tid, names in upns.items():
            self.directory.preload(tid, names)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Write everything collected so far (the calls as they are now)."""
        conn, uow = self.conn, self.uow
        self.send()
        if self.dirty_lots:
            conn.execute(sa.update(lots).where(lots.c.id == sa.bindparam("b_id")),
                         [{"b_id": k, "remaining": v} for k, v in self.dirty_lots.items()])
        for tid in sorted(self.dirty_wallets):
            uow.tenants.save_wallet(self.wallets[tid])
        for key in sorted(self.dirty_pools):
            row = self.pools[key]
            uow.charging.update_pool(*key, used_minutes=row.used_minutes,
                                     reserved_s=row.reserved_s, alerted=row.alerted)
        self._reset_pending()
