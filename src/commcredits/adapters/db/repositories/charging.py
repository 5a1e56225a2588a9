"""Calls in progress, minute-pool counters, usage records, SMS, auto-recharge attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.repositories.directory import User
from commcredits.adapters.db.repositories.tenants import tenant_of
from commcredits.adapters.db.schema import (
    calls,
    license_assignments,
    messages,
    pool_usage,
    rate_decks,
    recharges,
    tenants,
    usage_records,
    users,
)
from commcredits.domain.tenancy import Tenant


@dataclass(frozen=True, slots=True)
class CallContext:
    """What deciding a call reads, fetched in one round trip (see ``call_context``)."""
    tenant: Tenant
    deck_version: int | None
    user: User | None
    existing_call: bool  # a call with this id is already stored (any tenant)


def usage_filter(tenant_id: str, kind: str, start: datetime, end: datetime,
                 upn: str | None = None) -> list[sa.ColumnElement[bool]]:
    """The usage records of a report: tenant, kind, ``start <= start_time < end``, and one
    user (any case) when ``upn`` is given."""
    u = usage_records
    where = [u.c.tenant_id == tenant_id, u.c.kind == kind, u.c.start_time >= start,
             u.c.start_time < end]
    if upn:
        where.append(sa.func.lower(u.c.upn) == upn.lower())
    return where


class ChargingRepo:
    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    # -- calls -----------------------------------------------------------------------------
    def call(self, call_id: str, *, lock: bool = False) -> sa.Row | None:
        q = sa.select(calls).where(calls.c.call_id == call_id)
        if lock and self.postgres:
            q = q.with_for_update()
        return self.conn.execute(q).first()

    def call_context(self, call_id: str, tenant_id: str, upn: str | None
                     ) -> CallContext | None:
        """The tenant, its rate deck's version, the user ``upn`` with its licenses and whether
        ``call_id`` is taken, in ONE statement (None: no such tenant). Nothing here is cached:
        every authorization sees the directory, the policy and the deck as they are now."""
        rows = list(self.conn.execute(_CONTEXT, {"b_call_id": call_id, "b_tenant_id": tenant_id,
                                                 "b_upn": upn.lower() if upn else None}))
        if not rows:
            return None
        r = rows[0]
        user = None if r.u_id is None else User(
            r.u_id, tenant_id, r.u_upn, r.u_display_name, r.u_usage_location, r.u_phone_number,
            frozenset(x.sku for x in rows if x.sku))
        return CallContext(tenant_of(r), r.deck_version, user, r.existing is not None)

    def add_call(self, **values: Any) -> None:
        self.conn.execute(sa.insert(calls), values)

    def update_call(self, call_id: str, **values: Any) -> None:
        self.conn.execute(_UPDATE_CALL, {"b_call_id": call_id, **values})

    def active_calls(self, tenant_id: str | None = None) -> list[sa.Row]:
        q = sa.select(calls).where(calls.c.status == "active")
        if tenant_id:
            q = q.where(calls.c.tenant_id == tenant_id)
        return list(self.conn.execute(q))

    def user_credit_use(self, tenant_id: str, user_id: str, since: datetime) -> Decimal:
        """Credits a user has spent since ``since`` plus what their live calls hold."""
        spent = self.conn.scalar(sa.select(sa.func.sum(usage_records.c.credits_charge)).where(
            usage_records.c.tenant_id == tenant_id, usage_records.c.user_id == user_id,
            usage_records.c.start_time >= since))
        held = self.conn.scalar(sa.select(sa.func.sum(calls.c.credit_reserved)).where(
            calls.c.tenant_id == tenant_id, calls.c.user_id == user_id,
            calls.c.status == "active"))
        return (spent or Decimal(0)) + (held or Decimal(0))

    # -- pools -----------------------------------------------------------------------------
    def pool(self, tenant_id: str, month: str, pool: str, *, lock: bool = False) -> sa.Row:
        """The month's counter for a pool, created at zero on first use."""
        q = sa.select(pool_usage).where(pool_usage.c.tenant_id == tenant_id,
                                        pool_usage.c.month == month, pool_usage.c.pool == pool)
        row = self.conn.execute(q.with_for_update() if lock and self.postgres else q).first()
        if row is not None:
            return row
        try:
            with self.conn.begin_nested():
                self.conn.execute(sa.insert(pool_usage).values(
                    tenant_id=tenant_id, month=month, pool=pool, used_minutes=0, reserved_s=0,
                    alerted=0))
        except sa.exc.IntegrityError:
            pass
        return self.conn.execute(q.with_for_update() if lock and self.postgres else q).one()

    def update_pool(self, tenant_id: str, month: str, pool: str, **values: Any) -> None:
        self.conn.execute(_UPDATE_POOL, {"b_tenant_id": tenant_id, "b_month": month,
                                         "b_pool": pool, **values})

    def pools(self, tenant_id: str, month: str) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(pool_usage).where(
            pool_usage.c.tenant_id == tenant_id, pool_usage.c.month == month)))

    # -- usage records -----------------------------------------------------------------------
    def add_usage(self, **values: Any) -> None:
        self.conn.execute(sa.insert(usage_records), values)

    def usage_record(self, tenant_id: str, kind: str, ref: str) -> sa.Row:
        return self.conn.execute(sa.select(usage_records).where(
            usage_records.c.tenant_id == tenant_id, usage_records.c.kind == kind,
            usage_records.c.ref == ref)).one()

    def update_usage(self, usage_id: str, **values: Any) -> None:
        self.conn.execute(sa.update(usage_records).where(usage_records.c.id == usage_id)
                          .values(**values))

    def usage(self, tenant_id: str, kind: str, start: datetime, end: datetime,
              batch: int = 1000, upn: str | None = None) -> Any:
        """Stream records with ``start <= start_time < end`` in time order (of one user, any
        case, when ``upn`` is given), each with its user's ``aad_object_id`` (None when the
        user has none or is gone)."""
        q = (sa.select(usage_records, users.c.aad_object_id)
             .select_from(usage_records.outerjoin(users, sa.and_(
                 users.c.id == usage_records.c.user_id,
                 users.c.tenant_id == usage_records.c.tenant_id)))
             .where(*usage_filter(tenant_id, kind, start, end, upn))
             .order_by(usage_records.c.start_time, usage_records.c.id)
             .execution_options(yield_per=batch))
        yield from self.conn.execute(q)

    def count_usage(self, tenant_id: str, kind: str, start: datetime, end: datetime,
                    upn: str | None = None) -> int:
        return int(self.conn.scalar(sa.select(sa.func.count()).select_from(usage_records).where(
            *usage_filter(tenant_id, kind, start, end, upn))) or 0)

    # -- SMS ---------------------------------------------------------------------------------
    def message(self, message_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(messages)
                                 .where(messages.c.message_id == message_id)).first()

    def add_message(self, message_id: str, tenant_id: str, result: str, now: datetime) -> None:
        self.conn.execute(sa.insert(messages).values(message_id=message_id, tenant_id=tenant_id,
                                                     result=result, created_at=now))

    # -- auto-recharge attempts --------------------------------------------------------------
    def add_recharge(self, **values: Any) -> None:
        self.conn.execute(sa.insert(recharges), values)

    def open_recharge(self, tenant_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(recharges).where(
            recharges.c.tenant_id == tenant_id, recharges.c.status.in_(("pending", "failed")))
            .order_by(recharges.c.created_at.desc())).first()

    def update_recharge(self, recharge_id: str, **values: Any) -> None:
        self.conn.execute(sa.update(recharges).where(recharges.c.id == recharge_id)
                          .values(**values))

    def due_recharges(self, now: datetime) -> list[str]:
        q = (sa.select(recharges.c.tenant_id).distinct()
             .where(recharges.c.status.in_(("pending", "failed")),
                    recharges.c.next_attempt_at <= now))
        return sorted(self.conn.scalars(q))

    def recharges_since(self, tenant_id: str, since: datetime) -> int:
        return int(self.conn.scalar(sa.select(sa.func.count()).select_from(recharges).where(
            recharges.c.tenant_id == tenant_id, recharges.c.status == "succeeded",
            recharges.c.updated_at >= since)) or 0)

    def recharges(self, tenant_id: str) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(recharges).where(
            recharges.c.tenant_id == tenant_id).order_by(recharges.c.created_at)))


# built once: the hot path only binds values (the SET clause comes from the parameters)
_CONTEXT = (
    sa.select(tenants,
              sa.select(rate_decks.c.version).where(rate_decks.c.currency == tenants.c.currency)
              .scalar_subquery().label("deck_version"),
              sa.select(calls.c.tenant_id).where(calls.c.call_id == sa.bindparam("b_call_id"))
              .scalar_subquery().label("existing"),
              users.c.id.label("u_id"), users.c.upn.label("u_upn"),
              users.c.display_name.label("u_display_name"),
              users.c.usage_location.label("u_usage_location"),
              users.c.phone_number.label("u_phone_number"), license_assignments.c.sku)
    .select_from(tenants.outerjoin(users, sa.and_(
        users.c.tenant_id == tenants.c.id,
        sa.func.lower(users.c.upn) == sa.bindparam("b_upn", type_=sa.String)))
        .outerjoin(license_assignments, sa.and_(  # tenant too: one Citus shard
            license_assignments.c.user_id == users.c.id,
            license_assignments.c.tenant_id == users.c.tenant_id)))
    .where(tenants.c.id == sa.bindparam("b_tenant_id")))
_UPDATE_CALL = sa.update(calls).where(calls.c.call_id == sa.bindparam("b_call_id"))
_UPDATE_POOL = sa.update(pool_usage).where(
    pool_usage.c.tenant_id == sa.bindparam("b_tenant_id"),
    pool_usage.c.month == sa.bindparam("b_month"), pool_usage.c.pool == sa.bindparam("b_pool"))
