"""Tenants and their wallets (the row every balance change locks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from commcredits.adapters.db.schema import lots, tenants, wallets
from commcredits.domain.lots import Lot, LotSource
from commcredits.domain.money import ZERO
from commcredits.domain.tenancy import Commerce, Tenant
from commcredits.domain.wallet import AutoRecharge, RechargeStatus


@dataclass(slots=True)
class WalletRow:
    tenant_id: str
    currency: str
    balance: Decimal
    reserved: Decimal
    lot_seq: int
    txn_seq: int
    auto_recharge: AutoRecharge
    ar_armed: bool = True
    zero_notified: bool = False


def tenant_of(row: sa.Row) -> Tenant:
    return Tenant(row.id, row.name, row.country, row.currency, Commerce(row.commerce),
                  row.allow_premium, frozenset(p for p in row.blocked_prefixes.split(",") if p),
                  row.user_daily_cap, row.overage_enabled, row.no_rate)


def _wallet_of(r: sa.Row) -> WalletRow:
    return WalletRow(
        r.tenant_id, r.currency, r.balance, r.reserved, r.lot_seq, r.txn_seq,
        AutoRecharge(r.ar_enabled, r.ar_recharge_amount, r.ar_trigger_amount,
                     r.ar_payment_method_id, RechargeStatus(r.ar_status)),
        r.ar_armed, r.zero_notified)


class TenantRepo:
    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def add(self, tenant: Tenant, now: datetime) -> None:
        self.conn.execute(sa.insert(tenants).values(
            id=tenant.id, name=tenant.name, country=tenant.country, currency=tenant.currency,
            commerce=tenant.commerce.value, created_at=now))
        self.conn.execute(sa.insert(wallets).values(
            tenant_id=tenant.id, currency=tenant.currency, balance=ZERO, reserved=ZERO,
            lot_seq=0, txn_seq=0, ar_enabled=False, ar_status=RechargeStatus.OFF.value))

    def get(self, tenant_id: str) -> Tenant | None:
        row = self.conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).first()
        return tenant_of(row) if row else None

    def list(self) -> list[Tenant]:
        rows = self.conn.execute(sa.select(tenants).order_by(tenants.c.name))
        return [tenant_of(r) for r in rows]

    def ids(self) -> list[str]:
        return list(self.conn.scalars(sa.select(tenants.c.id).order_by(tenants.c.id)))

    def update(self, tenant_id: str, **values: object) -> None:
        self.conn.execute(sa.update(tenants).where(tenants.c.id == tenant_id).values(**values))

    # -- wallet -----------------------------------------------------------------------------
    def wallet(self, tenant_id: str, *, lock: bool = False) -> WalletRow:
        """The wallet row; ``lock=True`` holds it until commit (PostgreSQL row lock)."""
        query = sa.select(wallets).where(wallets.c.tenant_id == tenant_id)
        if lock and self.postgres:
            query = query.with_for_update()
        return _wallet_of(self.conn.execute(query).one())

    def wallet_and_lots(self, tenant_id: str) -> tuple[WalletRow, list[Lot]]:
        """The wallet row, held until commit (PostgreSQL row lock), and the tenant's lots in
        FIFO order: what every reservation and settlement reads first, in one round trip."""
        rows = self.conn.execute(_WALLET_AND_LOTS_LOCKED if self.postgres else _WALLET_AND_LOTS,
                                 {"b_tenant_id": tenant_id}).all()
        if not rows:
            raise LookupError(f"no wallet for tenant {tenant_id!r}")
        return _wallet_of(rows[0]), [
            Lot(r.l_id, r.l_seq, r.l_amount, r.l_remaining, r.l_purchased_at, r.l_expires_at,
                LotSource(r.l_source)) for r in rows if r.l_id is not None]

    def save_wallet(self, w: WalletRow) -> None:
        ar = w.auto_recharge
        self.conn.execute(_SAVE_WALLET, {
            "b_tenant_id": w.tenant_id, "balance": w.balance, "reserved": w.reserved,
            "lot_seq": w.lot_seq, "txn_seq": w.txn_seq, "ar_enabled": ar.enabled,
            "ar_recharge_amount": ar.recharge_amount, "ar_trigger_amount": ar.trigger_amount,
            "ar_payment_method_id": ar.payment_method_id, "ar_status": ar.status.value,
            "ar_armed": w.ar_armed, "zero_notified": w.zero_notified})


# built once: the hot path only binds values
_SAVE_WALLET = sa.update(wallets).where(wallets.c.tenant_id == sa.bindparam("b_tenant_id"))
_LOT_COLUMNS = [c for c in lots.columns
                if c.name not in ("tenant_id", "order_id", "expiring_notified")]
# SQLite: BEGIN IMMEDIATE already holds the database, so one join reads everything current
_WALLET_AND_LOTS = (
    sa.select(wallets, *(c.label(f"l_{c.name}") for c in _LOT_COLUMNS))
    .select_from(wallets.outerjoin(lots, lots.c.tenant_id == wallets.c.tenant_id))
    .where(wallets.c.tenant_id == sa.bindparam("b_tenant_id"))
    .order_by(lots.c.purchased_at, lots.c.seq))
# PostgreSQL: the lock, then the read, in a function (migration 0012 says why)
_WALLET_AND_LOTS_LOCKED = sa.text("SELECT * FROM wallet_and_lots(:b_tenant_id)").columns(
    *(sa.column(c.name, c.type) for c in wallets.columns),
    *(sa.column(f"l_{c.name}", c.type) for c in _LOT_COLUMNS))
