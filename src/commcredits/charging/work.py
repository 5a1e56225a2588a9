"""The unit of work of one batch: many requests, one transaction, the state in memory.

:class:`Batch` looks like :class:`~commcredits.adapters.db.uow.UnitOfWork` to the charging
rules (``services.charging``, ``services.settlement``, ``services.sms``, ``services.ledger``),
so every request of a batch is decided by exactly the code that decides it alone. What the
batch's requests name is read up front in one go (:meth:`load`: the wallets locked in tenant
order, then the calls, the lots, the tenants with their deck version, the users with their
licences, the messages, the pool counters); the rules read and change it in memory, in
arrival order; every row they changed is written at the end in bulk with the COMMIT
(:meth:`commit`). Whatever was not read up front is read from the database when asked, after
the changes so far are written (:class:`~commcredits.charging.views.Passthrough`), so no read
ever sees a stale row.

Safety: the wallets are locked before anything derived from them is read, always in tenant
id order (a batch, a job and an order never wait for each other in a circle), and stay
locked until the commit; a request that fails after changing something makes the whole
batch roll back (the engine then runs its requests one at a time).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.adapters.db.batch_store import Changes, Loaded, LoadPlan
from commcredits.adapters.db.repositories.directory import User
from commcredits.adapters.db.repositories.tenants import WalletRow
from commcredits.charging.views import (
    Access,
    Charging,
    Credits,
    Directory,
    Passthrough,
    Rates,
    Row,
    Tenants,
)
from commcredits.domain.lots import Lot, LotSource
from commcredits.domain.tenancy import Commerce, Tenant
from commcredits.domain.wallet import AutoRecharge, RechargeStatus

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def _tenant(r: Row) -> Tenant:
    return Tenant(r["id"], r["name"], r["country"], r["currency"], Commerce(r["commerce"]),
                  r["allow_premium"],
                  frozenset(p for p in r["blocked_prefixes"].split(",") if p),
                  r["user_daily_cap"], r["overage_enabled"], r["no_rate"])


def _wallet(r: Row) -> WalletRow:
    return WalletRow(r["tenant_id"], r["currency"], r["balance"], r["reserved"], r["lot_seq"],
                     r["txn_seq"], AutoRecharge(
                         r["ar_enabled"], r["ar_recharge_amount"], r["ar_trigger_amount"],
                         r["ar_payment_method_id"], RechargeStatus(r["ar_status"])),
                     r["ar_armed"], r["zero_notified"])


def wallet_row(w: WalletRow) -> Row:
    ar = w.auto_recharge
    return {"tenant_id": w.tenant_id, "currency": w.currency, "balance": w.balance,
            "reserved": w.reserved, "lot_seq": w.lot_seq, "txn_seq": w.txn_seq,
            "ar_enabled": ar.enabled, "ar_recharge_amount": ar.recharge_amount,
            "ar_trigger_amount": ar.trigger_amount, "ar_payment_method_id": ar.payment_method_id,
            "ar_status": ar.status.value, "ar_armed": w.ar_armed,
            "zero_notified": w.zero_notified}


def _lot(r: Row) -> Lot:
    return Lot(r["id"], r["seq"], r["amount"], r["remaining"], r["purchased_at"],
               r["expires_at"], LotSource(r["source"]))


class Batch:
    """One batch's view of the database over the real unit of work ``uow`` (same
    transaction), writing through ``store`` (``adapters.db.batch_store``)."""

    def __init__(self, uow: UnitOfWork, store: Any) -> None:
        self.uow = uow
        self.store = store
        self.conn = uow.conn
        self.now: datetime = uow.now
        self.postgres = uow.postgres
        self.clock = uow.clock
        self.actor: object = None
        self.recharges_requested: set[str] = set()
        self.cuts_requested: set[str] = set()
        self.day = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.writes = 0  # changes made so far (a request that fails after one spoils the batch)
        # the state, kept current in memory
        self.keys: dict[str, Row | None] = {}
        self.tenant_rows: dict[str, Tenant | None] = {}
        self.deck_versions: dict[str, int | None] = {}  # by tenant id
        self.wallets: dict[str, WalletRow] = {}  # locked
        self.lots: dict[str, list[Lot]] = {}
        self.lot_tenant: dict[str, str] = {}  # lot id → tenant id
        self.calls: dict[str, Row] = {}
        self.no_calls: set[str] = set()  # ids known not to be stored
        self.pools: dict[tuple[str, str, str], Row] = {}
        self.messages: dict[str, Row | None] = {}
        self.reads: dict[tuple[Any, ...], Any] = {}  # users, numbers, pool sizes...
        self.pool_scope: set[tuple[str, str]] = set()  # (tenant, month) counters read
        self.deferred: set[str] = set()  # tenants another batch held: their requests wait
        self.deferred_calls: dict[str, str] = {}  # calls of those tenants: id → tenant
        self._reset_pending()
        self._writer: ThreadPoolExecutor | None = None
        self._sending: Future[None] | None = None
        self.tenants = Tenants(self, uow.tenants)
        self.credits = Credits(self, uow.credits)
        self.charging = Charging(self, uow.charging)
        self.directory = Directory(self, uow.directory)
        self.rates = Rates(self, uow.rates)
        self.access = Access(self, uow.access)
        self.notifications = Passthrough(self, uow.notifications)
        self.bus = Passthrough(self, uow.bus)
        self.switching = Passthrough(self, uow.switching)
        self.payments = Passthrough(self, uow.payments)
        self.audit = Passthrough(self, uow.audit)

    def _reset_pending(self) -> None:
        self.new_calls: set[str] = set()
        self.changed_calls: set[str] = set()
        self.usage: list[Row] = []
        self.transactions: list[Row] = []
        self.postings: list[Row] = []
        self.dirty_lots: dict[str, tuple[str, Decimal]] = {}
        self.dirty_wallets: set[str] = set()
        self.dirty_pools: set[tuple[str, str, str]] = set()
        self.new_messages: list[Row] = []
        self.key_uses: list[tuple[str, datetime, datetime]] = []

    def wrote(self) -> None:
        self.writes += 1

    # -- reading up front ---------------------------------------------------------------------
    def load(self, plan: LoadPlan) -> None:
        """Read (and lock) everything ``plan`` names, in one go."""
        got: Loaded = self.store.load(plan)
        for h in plan.key_hashes:
            self.keys[h] = got.keys.get(h)
        for tid, row in got.wallets.items():
            self.wallets[tid] = _wallet(row)
            self.lots[tid] = [_lot(r) for r in got.lots.get(tid, ())]
            self.lot_tenant.update((lot.id, tid) for lot in self.lots[tid])
        for tid in plan.tenant_ids:
            self.tenant_rows.setdefault(tid, None)
        for tid, row in got.tenants.items():
            self.tenant_rows[tid] = _tenant(row)
            self.deck_versions[tid] = row["deck_version"]
        self.deferred, self.deferred_calls = got.deferred, got.deferred_calls
        self.calls.update((k, Row(v)) for k, v in got.calls.items())
        self.no_calls.update(c for c in plan.call_ids
                             if c not in got.calls and c not in got.deferred_calls)
        for m in plan.message_ids:
            self.messages[m] = Row(got.messages[m]) if m in got.messages else None
        self.pools.update((k, Row(v)) for k, v in got.pools.items())
        self.pool_scope.update(got.pool_scope)
        self._users(plan, got.users)

    def _users(self, plan: LoadPlan, rows: list[Row]) -> None:
        by_id: dict[str, list[Row]] = {}
        for r in rows:
            by_id.setdefault(r["id"], []).append(r)
        by_upn: dict[tuple[str, str], set[str]] = {}
        for uid, found in by_id.items():
            r = found[0]
            user = User(uid, r["tenant_id"], r["upn"], r["display_name"], r["usage_location"],
                        r["phone_number"], frozenset(x["sku"] for x in found if x["sku"]))
            self.reads[("id", r["tenant_id"], uid)] = user
            by_upn.setdefault((r["tenant_id"], r["upn"].lower()), set()).add(uid)
        for key in plan.upns:
            ids = by_upn.get(key, set())
            if len(ids) > 1:  # two users match in any case: left to the repository's rule
                continue
            self.reads[("upn", *key)] = self.reads[("id", key[0], next(iter(ids)))] \
                if ids else None

    # -- writing --------------------------------------------------------------------------------
    def changes(self) -> Changes:
        calls = self.calls
        return Changes(
            new_calls=[calls[c] for c in self.new_calls],
            changed_calls=[calls[c] for c in self.changed_calls if c not in self.new_calls],
            usage=self.usage, transactions=self.transactions, postings=self.postings,
            lots=[(lot_id, tid, rem) for lot_id, (tid, rem) in self.dirty_lots.items()],
            wallets=[wallet_row(self.wallets[t]) for t in sorted(self.dirty_wallets)],
            pools=[self.pools[k] for k in sorted(self.dirty_pools)],
            messages=self.new_messages, key_uses=self.key_uses)

    def flush(self) -> None:
        """Write every change so far (before a read the batch cannot answer itself)."""
        self.wait()
        changes = self.changes()
        if changes:
            self.store.write(changes)
        self._reset_pending()

    def commit(self) -> None:
        """Write every change and commit, together."""
        self.wait()
        self.store.write(self.changes(), commit=True)
        self._reset_pending()
        self.uow.commit()

    # -- a big batch's rows, written while the next requests are decided -------------------
    def stream(self) -> None:
        """Send the new rows so far (calls, usage records, ledger entries, messages) to the
        database on a thread of the batch, in its transaction, while the caller decides on
        in memory; the rows that keep changing (wallets, lots, pool counters) wait for the
        commit. Anything that needs the connection waits for the thread first (``wait``).
        Only where the store can (PostgreSQL); elsewhere a no-op."""
        send = getattr(self.store, "send", None)
        if send is None:
            return
        self.wait()
        calls = self.calls
        rows = Changes(
            new_calls=[calls[c] for c in self.new_calls],
            changed_calls=[calls[c] for c in self.changed_calls if c not in self.new_calls],
            usage=self.usage, transactions=self.transactions, postings=self.postings,
            messages=self.new_messages)
        params = self.store.encode(rows)
        self.new_calls, self.changed_calls = set(), set()
        self.usage, self.transactions, self.postings, self.new_messages = [], [], [], []
        if params is None:
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="batch-write")
        self._sending = self._writer.submit(send, params)

    def wait(self) -> None:
        """Wait for rows being written by :meth:`stream` (raising what that raised)."""
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()

    def close(self) -> None:
        """Leave the connection free whatever happened (before a rollback)."""
        if self._sending is not None:
            futures_wait([self._sending])
            self._sending = None
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None
