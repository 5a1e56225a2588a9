"""Lots, the ledger, payment methods and orders."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db import bulk
from commcredits.adapters.db.schema import (
    ledger_postings,
    ledger_transactions,
    lots,
    orders,
    payment_methods,
)
from commcredits.adapters.db.types import Amount
from commcredits.domain.ledger import Transaction
from commcredits.domain.lots import Lot, LotSource


@dataclass(frozen=True, slots=True)
class LedgerLine:
    id: str
    seq: int
    kind: str
    at: datetime
    amount: Decimal
    balance_after: Decimal
    lot_id: str | None
    reference: str | None


@functools.cache
def _record_statement(legs: int) -> sa.Insert:
    """The ledger transaction (a CTE) and its ``legs`` postings as one INSERT, built once per
    number of postings so the hot path only binds values (built anew each time, its
    compilation cost more than the database's work)."""
    def bound(table: sa.Table, prefix: str) -> dict[str, Any]:
        return {c.name: sa.bindparam(f"{prefix}{c.name}", type_=c.type) for c in table.columns
                if c.name != "id" or table is ledger_transactions}
    # one single-row INSERT per posting (a multi-row VALUES is not cacheable). PostgreSQL runs
    # the main INSERT first, then the unreferenced CTEs in order: postings get ids in order
    ctes = [sa.insert(ledger_transactions).values(bound(ledger_transactions, "h_")).cte("txn"),
            *(sa.insert(ledger_postings).values(bound(ledger_postings, f"l{i}_")).cte(f"leg{i}")
              for i in range(1, legs))]
    return sa.insert(ledger_postings).values(bound(ledger_postings, "l0_")).add_cte(*ctes)


def _lot(r: sa.Row) -> Lot:
    return Lot(r.id, r.seq, r.amount, r.remaining, r.purchased_at, r.expires_at,
               LotSource(r.source))


class CreditsRepo:
    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    # -- lots ------------------------------------------------------------------------------
    def add_lot(self, tenant_id: str, lot: Lot, order_id: str | None) -> None:
        self.conn.execute(sa.insert(lots), {
            "id": lot.id, "tenant_id": tenant_id, "seq": lot.seq, "amount": lot.amount,
            "remaining": lot.remaining, "purchased_at": lot.purchased_at,
            "expires_at": lot.expires_at, "source": lot.source.value, "order_id": order_id,
            "expiring_notified": False})

    def lots(self, tenant_id: str) -> list[Lot]:
        q = sa.select(lots).where(lots.c.tenant_id == tenant_id).order_by(
            lots.c.purchased_at, lots.c.seq)
        return [_lot(r) for r in self.conn.execute(q)]

    def set_remaining(self, lot_id: str, remaining: Decimal) -> None:
        self.conn.execute(_SET_REMAINING, {"b_id": lot_id, "remaining": remaining})

    def set_remaining_many(self, remaining: dict[str, Decimal]) -> None:
        if remaining:
            self.conn.execute(_SET_REMAINING, [{"b_id": lot_id, "remaining": value}
                                               for lot_id, value in remaining.items()])

    def tenants_with_lots_due(self, before: datetime) -> list[str]:
        """Tenants having a lot with money left that expires before ``before``."""
        q = (sa.select(lots.c.tenant_id).distinct()
             .where(lots.c.expires_at <= before, lots.c.remaining > 0))
        return sorted(self.conn.scalars(q))

    def open_lots_due(self, tenant_id: str, before: datetime, limit: int) -> list[Lot]:
        """The first ``limit`` lots (FIFO) with money left that expire by ``before``: a
        chunk of the expiry job. A lot expires 12 months after its purchase, so in FIFO order
        the expired ones come first; the walk stops at ``limit`` (``ix_lots_open_fifo``)."""
        q = (sa.select(lots).where(lots.c.tenant_id == tenant_id, lots.c.remaining > 0,
                                   lots.c.expires_at <= before)
             .order_by(lots.c.purchased_at, lots.c.seq).limit(limit))
        return [_lot(r) for r in self.conn.execute(q)]

    def lots_to_warn(self, tenant_id: str, now: datetime, until: datetime,
                     limit: int) -> list[Lot]:
        """The first ``limit`` lots (FIFO) with money left, expiring in ``(now, until]``,
        not yet warned about."""
        q = (sa.select(lots).where(lots.c.tenant_id == tenant_id, lots.c.remaining > 0,
                                   lots.c.expires_at > now, lots.c.expires_at <= until,
                                   sa.not_(lots.c.expiring_notified))
             .order_by(lots.c.purchased_at, lots.c.seq).limit(limit))
        return [_lot(r) for r in self.conn.execute(q)]

    def spendable(self, tenant_id: str, now: datetime) -> Decimal:
        """What the tenant's live lots hold (the sum the database makes, exact)."""
        q = sa.select(sa.type_coerce(sa.func.coalesce(sa.func.sum(lots.c.remaining), 0),
                                     Amount)).where(lots.c.tenant_id == tenant_id,
                                                    lots.c.remaining > 0,
                                                    lots.c.expires_at > now)
        total = self.conn.execute(q).scalar()
        return total if total is not None else Decimal(0)

    def mark_expiring_notified_many(self, lot_ids: list[str]) -> None:
        if lot_ids:
            self.conn.execute(sa.update(lots).where(lots.c.id.in_(lot_ids))
                              .values(expiring_notified=True))

    def expiring_notified(self, tenant_id: str) -> set[str]:
        q = sa.select(lots.c.id).where(lots.c.tenant_id == tenant_id, lots.c.expiring_notified)
        return set(self.conn.scalars(q))

    def mark_expiring_notified(self, lot_id: str) -> None:
        self.conn.execute(sa.update(lots).where(lots.c.id == lot_id)
                          .values(expiring_notified=True))

    # -- ledger ----------------------------------------------------------------------------
    def record(self, txn_id: str, tenant_id: str, seq: int, txn: Transaction, at: datetime,
               balance_after: Decimal) -> None:
        head = {"id": txn_id, "tenant_id": tenant_id, "seq": seq, "kind": txn.kind.value,
                "at": at, "amount": txn.wallet_delta, "balance_after": balance_after,
                "lot_id": txn.lot_id, "reference": txn.reference}
        legs = [{"transaction_id": txn_id, "tenant_id": tenant_id, "debit_account": p.debit,
                 "credit_account": p.credit, "amount": p.amount} for p in txn.postings]
        if self.postgres:  # one round trip: the transaction row in a CTE, then its postings
            params = {f"h_{k}": v for k, v in head.items()}
            for i, leg in enumerate(legs):
                params.update({f"l{i}_{k}": v for k, v in leg.items()})
            self.conn.execute(_record_statement(len(legs)), params)
            return
        self.conn.execute(sa.insert(ledger_transactions), head)
        self.conn.execute(sa.insert(ledger_postings), legs)

    def record_many(self, heads: list[dict[str, Any]], legs: list[dict[str, Any]]) -> None:
        """Several ledger transactions (rows of ``ledger_transactions``) and their postings,
        in bulk (``COPY`` on PostgreSQL)."""
        bulk.insert(self.conn, ledger_transactions, heads)
        bulk.insert(self.conn, ledger_postings, legs)

    def ledger(self, tenant_id: str, *, limit: int | None = None,
               newest_first: bool = False) -> list[LedgerLine]:
        order = ledger_transactions.c.seq.desc() if newest_first else ledger_transactions.c.seq
        q = (sa.select(ledger_transactions).where(ledger_transactions.c.tenant_id == tenant_id)
             .order_by(order).limit(limit))
        return [LedgerLine(r.id, r.seq, r.kind, r.at, r.amount, r.balance_after, r.lot_id,
                           r.reference) for r in self.conn.execute(q)]

    def usage_by_day(self, tenant_id: str, since: datetime) -> dict[str, Decimal]:
        """Money spent on usage per UTC day (``YYYY-MM-DD``) since ``since``."""
        day = sa.func.date(ledger_transactions.c.at)
        q = (sa.select(day, sa.func.sum(ledger_transactions.c.amount))
             .where(ledger_transactions.c.tenant_id == tenant_id,
                    ledger_transactions.c.kind == "usage", ledger_transactions.c.at >= since)
             .group_by(day))
        # SUM keeps the Amount type, so totals come back as exact Decimals
        return {str(d)[:10]: -total for d, total in self.conn.execute(q)}

    def account_balances(self, tenant_id: str) -> dict[str, Decimal]:
        """Every account's balance re-derived from the tenant's postings by the database
        (credits add, debits subtract; exact: amounts are integers of millionths)."""
        p = ledger_postings
        legs = sa.union_all(
            sa.select(p.c.credit_account.label("account"), p.c.amount.label("amount"))
            .where(p.c.tenant_id == tenant_id),
            sa.select(p.c.debit_account, -p.c.amount).where(p.c.tenant_id == tenant_id),
        ).subquery()
        q = sa.select(legs.c.account, sa.type_coerce(sa.func.sum(legs.c.amount), Amount)
                      ).group_by(legs.c.account)
        return {account: total for account, total in self.conn.execute(q)}

    def ledger_deltas(self, tenant_id: str, batch: int = 10_000) -> Any:
        """Stream ``(id, amount, balance_after, lot delta, postings)`` per transaction in
        ``seq`` order, where the lot delta is what the postings move into the tenant's lots
        (None and 0 postings when the transaction has none). Constant memory."""
        p = ledger_postings
        into_lot = sa.case((p.c.credit_account.startswith("lot:"), p.c.amount), else_=0)
        out_of_lot = sa.case((p.c.debit_account.startswith("lot:"), p.c.amount), else_=0)
        per_txn = (sa.select(p.c.transaction_id, p.c.tenant_id,
                             sa.func.sum(into_lot - out_of_lot).label("delta"),
                             sa.func.count().label("n"))
                   .where(p.c.tenant_id == tenant_id)
                   .group_by(p.c.transaction_id, p.c.tenant_id).subquery())
        t = ledger_transactions
        q = (sa.select(t.c.id, t.c.amount, t.c.balance_after,
                       sa.type_coerce(per_txn.c.delta, Amount),
                       sa.func.coalesce(per_txn.c.n, 0))
             .select_from(t.outerjoin(per_txn, sa.and_(  # tenant too: one Citus shard
                 per_txn.c.transaction_id == t.c.id, per_txn.c.tenant_id == t.c.tenant_id)))
             .where(t.c.tenant_id == tenant_id).order_by(t.c.seq)
             .execution_options(yield_per=batch))
        yield from self.conn.execute(q)

    def usage_taken(self, tenant_id: str) -> Decimal:
        """What the tenant's usage records say credits took (charged, not uncollected)."""
        from commcredits.adapters.db.schema import usage_records as u
        total = self.conn.scalar(sa.select(sa.type_coerce(sa.func.sum(u.c.credits_charge),
                                                          Amount))
                                 .where(u.c.tenant_id == tenant_id))
        return total if total is not None else Decimal(0)

    def stray_corrections(self, tenant_id: str) -> list[str]:
        """Correction entries whose reference names no usage record of the tenant."""
        from commcredits.adapters.db.schema import usage_records as u
        t = ledger_transactions
        known = sa.select(u.c.id).where(u.c.tenant_id == tenant_id)
        q = sa.select(t.c.id).where(t.c.tenant_id == tenant_id, t.c.kind == "correction",
                                    sa.or_(t.c.reference.is_(None), t.c.reference.not_in(known)))
        return list(self.conn.scalars(q))

    # -- payment methods -------------------------------------------------------------------
    def add_payment_method(self, **values: Any) -> None:
        self.conn.execute(sa.insert(payment_methods).values(**values))

    def payment_method(self, tenant_id: str, pm_id: str) -> sa.Row | None:
        """A payment method the tenant may pay with (not removed)."""
        q = sa.select(payment_methods).where(payment_methods.c.id == pm_id,
                                             payment_methods.c.tenant_id == tenant_id,
                                             payment_methods.c.removed_at.is_(None))
        return self.conn.execute(q).first()

    def payment_methods(self, tenant_id: str, with_removed: bool = False) -> list[sa.Row]:
        where = [payment_methods.c.tenant_id == tenant_id]
        if not with_removed:
            where.append(payment_methods.c.removed_at.is_(None))
        q = (sa.select(payment_methods).where(*where)
             .order_by(payment_methods.c.created_at, payment_methods.c.id))
        return list(self.conn.execute(q))

    def any_payment_method(self, tenant_id: str, pm_id: str) -> sa.Row | None:
        """A payment method, removed or not (an old order's)."""
        return self.conn.execute(sa.select(payment_methods).where(
            payment_methods.c.id == pm_id, payment_methods.c.tenant_id == tenant_id)).first()

    def remove_payment_method(self, tenant_id: str, pm_id: str, now: datetime) -> None:
        self.conn.execute(sa.update(payment_methods).where(
            payment_methods.c.id == pm_id, payment_methods.c.tenant_id == tenant_id)
            .values(removed_at=now, is_default=False))

    def set_default_payment_method(self, tenant_id: str, pm_id: str) -> None:
        self.conn.execute(sa.update(payment_methods).where(
            payment_methods.c.tenant_id == tenant_id)
            .values(is_default=payment_methods.c.id == pm_id))

    # -- orders ----------------------------------------------------------------------------
    def add_order(self, **values: Any) -> None:
        self.conn.execute(sa.insert(orders).values(**values))

    def order(self, tenant_id: str, order_id: str) -> sa.Row | None:
        q = sa.select(orders).where(orders.c.id == order_id, orders.c.tenant_id == tenant_id)
        return self.conn.execute(q).first()

    def orders(self, tenant_id: str) -> list[sa.Row]:
        q = (sa.select(orders).where(orders.c.tenant_id == tenant_id)
             .order_by(orders.c.created_at.desc(), orders.c.id))
        return list(self.conn.execute(q))


_SET_REMAINING = sa.update(lots).where(lots.c.id == sa.bindparam("b_id"))


def closing_balances(conn: sa.Connection, tenant_id: str,
                     since: datetime) -> tuple[Decimal | None, dict[str, Decimal]]:
    """The balance before ``since`` (None: no transaction yet) and at the end of each UTC
    day (``YYYY-MM-DD``) since then that has a transaction: the spend chart's balance line."""
    t = ledger_transactions
    opening = conn.scalar(sa.select(t.c.balance_after).where(t.c.tenant_id == tenant_id,
                                                            t.c.at < since)
                          .order_by(t.c.seq.desc()).limit(1))
    day = sa.func.date(t.c.at)
    last = (sa.select(day.label("day"), sa.func.max(t.c.seq).label("seq"))
            .where(t.c.tenant_id == tenant_id, t.c.at >= since).group_by(day).subquery())
    q = (sa.select(last.c.day, t.c.balance_after)
         .join_from(last, t, sa.and_(t.c.seq == last.c.seq, t.c.tenant_id == tenant_id)))
    return opening, {str(d)[:10]: b for d, b in conn.execute(q)}
