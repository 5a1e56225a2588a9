"""What a charging batch reads and writes, in as few round trips as the database allows.

The charging engine (``commcredits.charging``) decides many requests in one transaction. It
asks this store for everything those requests need at once (:meth:`PgBatchStore.load`) and
hands it every row they changed at the end (:meth:`PgBatchStore.write`).

PostgreSQL: libpq itself on the batch's connection (``pg_wire``: psycopg's own pipelines
cost more Python and time than the database's work on a small batch), two functions
(migration 0013) whose statements PL/pgSQL plans once per connection. The read
(``charging_load``, after BEGIN) locks the wallets first, in tenant order (two batches, or a
batch and a job, never wait for each other in a circle), then the calls the requests name,
then reads everything else, each statement seeing what committed before it (READ COMMITTED
takes a snapshot per statement, so nothing derived from the lots is read from before a lock
wait). The writes (``charging_write``, a JSON array per table) and the COMMIT follow. Values
cross as the columns store them: money as integer millionths, times as naive UTC.

SQLite (one writer at a time, ``BEGIN IMMEDIATE``): the same reads and writes through
SQLAlchemy, a statement each; a batch there is small and the database is local.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg import pq

from commcredits.adapters.db import pg_wire
from commcredits.adapters.db.schema import (
    api_keys,
    calls,
    ledger_postings,
    ledger_transactions,
    license_assignments,
    lots,
    messages,
    pool_usage,
    rate_decks,
    tenants,
    usage_records,
    users,
    wallets,
)
from commcredits.adapters.db.types import SCALE, Amount, UtcDateTime

Row = dict[str, Any]


@dataclass(slots=True)
class LoadPlan:
    """What a batch's requests name (lists, no repeats)."""
    key_hashes: list[str] = field(default_factory=list)
    tenant_ids: list[str] = field(default_factory=list)  # named by requests
    call_ids: list[str] = field(default_factory=list)  # calls to lock (or learn are new)
    upns: list[tuple[str, str]] = field(default_factory=list)  # (tenant id, lower(upn))
    message_ids: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)  # pool counter months (YYYY-MM)
    wait: list[str] | None = None  # tenants to wait for (None: all; else the rest are skipped
    # when another batch holds them)


@dataclass(slots=True)
class Loaded:
    keys: dict[str, Row]  # by hash
    wallets: dict[str, Row]  # locked, by tenant id
    calls: dict[str, Row]  # locked, by call id
    lots: dict[str, list[Row]]  # by tenant id, FIFO order
    tenants: dict[str, Row]  # with deck_version
    users: list[Row]  # one row per (user, licence); sku None without licences
    messages: dict[str, Row]
    pools: dict[tuple[str, str, str], Row]  # (tenant, month, pool)
    pool_scope: set[tuple[str, str]]  # (tenant, month) whose counters were all read
    deferred: set[str] = field(default_factory=set)  # tenants another batch held: not read
    deferred_calls: dict[str, str] = field(default_factory=dict)  # their calls: id → tenant


@dataclass(slots=True)
class Changes:
    """Every row a batch changed, as full rows (Python values)."""
    new_calls: list[Row] = field(default_factory=list)
    changed_calls: list[Row] = field(default_factory=list)
    usage: list[Row] = field(default_factory=list)
    transactions: list[Row] = field(default_factory=list)
    postings: list[Row] = field(default_factory=list)
    lots: list[tuple[str, str, Decimal]] = field(default_factory=list)  # (id, tenant, remaining)
    wallets: list[Row] = field(default_factory=list)
    pools: list[Row] = field(default_factory=list)
    messages: list[Row] = field(default_factory=list)
    key_uses: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.new_calls, self.changed_calls, self.usage, self.transactions,
                    self.lots, self.wallets, self.pools, self.messages, self.key_uses))


# -- values as the columns store them ----------------------------------------------------
_AMOUNT = Amount()
_TIME = UtcDateTime()


def to_millionths(value: Decimal | None) -> int | None:
    if value is None:
        return None
    if type(value) is Decimal:
        scaled = value.scaleb(SCALE)
        whole = int(scaled)
        if whole == scaled:
            return whole
    return _AMOUNT.process_bind_param(value, None)  # the error it raises (or an int)


def to_utc(value: datetime | None) -> datetime | None:
    """An aware time in UTC (``UtcDateTime``'s rule: a naive time is refused)."""
    if value is None or value.tzinfo is UTC:
        return value
    stored = _TIME.process_bind_param(value, None)  # raises on a naive time
    assert stored is not None
    return stored.replace(tzinfo=UTC)


def from_naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


KEY_COLUMNS = ["id", "key_hash", "role", "tenant_id", "revoked_at", "last_used_at"]
LOT_COLUMNS = ["tenant_id", "id", "seq", "amount", "remaining", "purchased_at", "expires_at",
               "source"]
USER_COLUMNS = ["id", "tenant_id", "upn", "display_name", "usage_location", "phone_number"]
MESSAGE_COLUMNS = ["message_id", "tenant_id", "result", "created_at"]
_CALL_SET = [c.name for c in calls.columns if c.name not in ("call_id", "tenant_id")]
_WALLET_SET = [c.name for c in wallets.columns if c.name not in ("tenant_id", "currency")]


def _money_and_times(table: sa.Table) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(str(c.name) for c in table.columns if isinstance(c.type, Amount)),
            tuple(str(c.name) for c in table.columns if isinstance(c.type, UtcDateTime)))


_TABLES = {"keys": api_keys, "wallets": wallets, "calls": calls, "lots": lots,
           "tenants": tenants, "users": users, "messages": messages, "pools": pool_usage,
           "calls_w": calls, "usage": usage_records, "transactions": ledger_transactions,
           "postings": ledger_postings}
_FIELDS = {name: _money_and_times(table) for name, table in _TABLES.items()}


def _decoded(kind: str, rows: list[Row] | None) -> list[Row]:
    """Rows of a JSON document as Python values (money Decimal, times aware UTC)."""
    if not rows:
        return []
    money, times = _FIELDS[kind]
    fromiso = datetime.fromisoformat
    for r in rows:
        for n in money:
            v = r.get(n)
            if v is not None:
                r[n] = Decimal(v).scaleb(-SCALE)
        for n in times:
            v = r.get(n)
            if v is not None:
                r[n] = fromiso(v).replace(tzinfo=UTC)
    return rows


def _stored(value: Any) -> Any:
    """Money as its column stores it: every Decimal of a batch's rows is an ``Amount``, in
    integer millionths (a seventh decimal is refused)."""
    if type(value) is Decimal:
        return to_millionths(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _encoded(kind: str, rows: Sequence[Row]) -> bytes | None:
    """Rows as the JSON document ``charging_write`` reads. Times are written by orjson as
    ISO 8601 with their offset, which a ``timestamp`` column ignores: every time the service
    keeps is UTC (``UtcDateTime``'s rule: the API turns what it is given into UTC, the
    clocks and the database give UTC)."""
    if not rows:
        return None
    return orjson.dumps(rows, default=_stored)


_PG_LOAD = (b"SELECT charging_load($1::text[], $2::text[], $3::text[], $4::text[], "
            b"$5::text[], $6::text[], $7::text[], $8::text[])::text")
_PG_WRITE = (b"SELECT charging_write($1::json, $2::json, $3::json, $4::json, $5::json, "
             b"$6::json, $7::json, $8::json, $9::json, $10::json)")


class PgBatchStore:
    """The batch's reads and writes on the psycopg connection ``raw`` (in its transaction):
    one call of ``charging_load`` and one of ``charging_write`` (migration 0013), sent
    through libpq itself (``pg_wire``); the rows cross as JSON."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def load(self, plan: LoadPlan) -> Loaded:
        raw = self.raw
        if raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            pg_wire.command(raw, b"BEGIN")
        text = pg_wire.query(raw, _PG_LOAD, [
            pg_wire.array(plan.key_hashes), pg_wire.array(plan.tenant_ids),
            pg_wire.array(plan.call_ids), pg_wire.array([t for t, _ in plan.upns]),
            pg_wire.array([u for _, u in plan.upns]), pg_wire.array(plan.message_ids),
            pg_wire.array(plan.months), pg_wire.array(plan.wait)])
        doc = orjson.loads(text)
        lots_by: dict[str, list[Row]] = {}
        for lot in _decoded("lots", doc["lots"]):
            lots_by.setdefault(lot["tenant_id"], []).append(lot)
        return Loaded(
            keys={r["key_hash"]: r for r in _decoded("keys", doc["keys"])},
            wallets={r["tenant_id"]: r for r in _decoded("wallets", doc["wallets"])},
            calls={r["call_id"]: r for r in _decoded("calls", doc["calls"])},
            lots=lots_by,
            tenants={r["id"]: r for r in _decoded("tenants", doc["tenants"])},
            users=_decoded("users", doc["users"]),
            messages={r["message_id"]: r for r in _decoded("messages", doc["messages"])},
            pools={(r["tenant_id"], r["month"], r["pool"]): r
                   for r in _decoded("pools", doc["pools"])},
            pool_scope={(t, m) for t, m in doc["pool_scope"] or ()},
            deferred=set(doc["deferred"] or ()),
            deferred_calls={c: t for c, t in doc["deferred_calls"] or ()})

    def write(self, ch: Changes, *, commit: bool = False) -> None:
        """Store every change (and commit, in the same round trip)."""
        self.send(self.encode(ch), commit=commit)

    @staticmethod
    def encode(ch: Changes) -> tuple[bytes | None, ...] | None:
        """The parameters of ``charging_write`` for ``ch`` (None: nothing to write)."""
        if not ch:
            return None
        return (_encoded("calls_w", ch.new_calls), _encoded("calls_w", ch.changed_calls),
                _encoded("transactions", ch.transactions),
                _encoded("postings", ch.postings), _encoded("usage", ch.usage),
                _encoded("lots", [{"id": i, "tenant_id": t, "remaining": r}
                                  for i, t, r in ch.lots]),
                _encoded("wallets", ch.wallets), _encoded("pools", ch.pools),
                _encoded("messages", ch.messages),
                _encoded("keys", [{"id": k, "at": a, "stale_before": b}
                                  for k, a, b in ch.key_uses]))

    def send(self, params: tuple[bytes | None, ...] | None, *, commit: bool = False) -> None:
        """Run ``charging_write`` with ``params`` (from :meth:`encode`), then the COMMIT.
        May run on another thread than the one that encoded them, as long as nothing else
        uses the connection meanwhile."""
        raw = self.raw
        if params is not None:
            pg_wire.query(raw, _PG_WRITE, params)
        if commit:
            pg_wire.commit(raw)


# -- SQLite ---------------------------------------------------------------------------------
def _lite_rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(query)]


class SqliteBatchStore:
    """The same reads and writes through SQLAlchemy (SQLite holds the database for the
    batch: ``BEGIN IMMEDIATE``)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def load(self, plan: LoadPlan) -> Loaded:
        conn = self.conn
        call_rows = _lite_rows(conn, sa.select(calls).where(calls.c.call_id.in_(plan.call_ids)))
        tids = sorted(set(plan.tenant_ids) | {c["tenant_id"] for c in call_rows})
        keys = _lite_rows(conn, sa.select(*(api_keys.c[n] for n in KEY_COLUMNS))
                          .where(api_keys.c.key_hash.in_(plan.key_hashes)))
        wallet_rows = _lite_rows(conn, sa.select(wallets).where(wallets.c.tenant_id.in_(tids))
                                 .order_by(wallets.c.tenant_id))
        lot_rows = _lite_rows(conn, sa.select(*(lots.c[n] for n in LOT_COLUMNS))
                              .where(lots.c.tenant_id.in_(tids))
                              .order_by(lots.c.tenant_id, lots.c.purchased_at, lots.c.seq))
        version = (sa.select(rate_decks.c.version)
                   .where(rate_decks.c.currency == tenants.c.currency).scalar_subquery())
        tenant_rows = _lite_rows(conn, sa.select(tenants, version.label("deck_version"))
                                 .where(tenants.c.id.in_(tids)))
        user_ids = [(c["tenant_id"], c["user_id"]) for c in call_rows if c["user_id"]]
        match = [sa.and_(users.c.tenant_id == t, sa.func.lower(users.c.upn) == u)
                 for t, u in plan.upns] + [sa.and_(users.c.tenant_id == t, users.c.id == i)
                                          for t, i in user_ids]
        user_rows: list[Row] = []
        if match:
            user_rows = _lite_rows(conn, sa.select(*(users.c[n] for n in USER_COLUMNS),
                                                   license_assignments.c.sku)
                                   .select_from(users.outerjoin(license_assignments, sa.and_(
                                       license_assignments.c.user_id == users.c.id,
                                       license_assignments.c.tenant_id == users.c.tenant_id)))
                                   .where(sa.or_(*match)))
        message_rows = _lite_rows(conn, sa.select(*(messages.c[n] for n in MESSAGE_COLUMNS))
                                  .where(messages.c.message_id.in_(plan.message_ids)))
        months = set(plan.months) | {c["pool_month"] for c in call_rows if c["pool_month"]}
        pool_rows = _lite_rows(conn, sa.select(pool_usage).where(
            pool_usage.c.tenant_id.in_(tids), pool_usage.c.month.in_(months)))
        lots_by: dict[str, list[Row]] = {}
        for lot in lot_rows:
            lots_by.setdefault(lot["tenant_id"], []).append(lot)
        return Loaded(
            pool_scope={(t, m) for t in tids for m in months},
            keys={r["key_hash"]: r for r in keys},
            wallets={r["tenant_id"]: r for r in wallet_rows},
            calls={r["call_id"]: r for r in call_rows}, lots=lots_by,
            tenants={r["id"]: r for r in tenant_rows}, users=user_rows,
            messages={r["message_id"]: r for r in message_rows},
            pools={(r["tenant_id"], r["month"], r["pool"]): r for r in pool_rows})

    def write(self, ch: Changes, *, commit: bool = False) -> None:
        conn = self.conn
        for table, rows in ((calls, ch.new_calls), (ledger_transactions, ch.transactions),
                            (ledger_postings, ch.postings), (usage_records, ch.usage),
                            (messages, ch.messages)):
            if rows:
                conn.execute(sa.insert(table), rows)
        if ch.changed_calls:
            conn.execute(sa.update(calls).where(calls.c.call_id == sa.bindparam("b_call_id"))
                         .values({n: sa.bindparam(n) for n in _CALL_SET}),
                         [{"b_call_id": r["call_id"], **{n: r[n] for n in _CALL_SET}}
                          for r in ch.changed_calls])
        if ch.lots:
            conn.execute(sa.update(lots).where(lots.c.id == sa.bindparam("b_id"))
                         .values(remaining=sa.bindparam("b_remaining")),
                         [{"b_id": i, "b_remaining": r} for i, _, r in ch.lots])
        if ch.wallets:
            conn.execute(sa.update(wallets)
                         .where(wallets.c.tenant_id == sa.bindparam("b_tenant_id"))
                         .values({n: sa.bindparam(n) for n in _WALLET_SET}),
                         [{"b_tenant_id": w["tenant_id"], **{n: w[n] for n in _WALLET_SET}}
                          for w in ch.wallets])
        for row in ch.pools:
            key = (pool_usage.c.tenant_id == row["tenant_id"]) & (
                pool_usage.c.month == row["month"]) & (pool_usage.c.pool == row["pool"])
            done = conn.execute(sa.update(pool_usage).where(key).values(
                used_minutes=row["used_minutes"], reserved_s=row["reserved_s"],
                alerted=row["alerted"]))
            if not done.rowcount:
                conn.execute(sa.insert(pool_usage), row)
        for key_id, at, stale_before in ch.key_uses:
            conn.execute(sa.update(api_keys).where(
                api_keys.c.id == key_id, sa.or_(api_keys.c.last_used_at.is_(None),
                                                api_keys.c.last_used_at < stale_before))
                .values(last_used_at=at))
