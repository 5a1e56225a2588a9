"""Re-rating's reads and writes: runs, the calls of a period with what they were settled
at, a tenant's ledger from a point on (for the replay), the applied markers and corrections."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import (
    calls,
    ledger_postings,
    ledger_transactions,
    lots,
    rerate_runs,
    rerate_tenants,
    tenants,
    usage_corrections,
    usage_records,
)
from commcredits.adapters.db.types import UtcDateTime


class RerateRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    # -- runs --------------------------------------------------------------------------------
    def add_run(self, **values: Any) -> None:
        self.conn.execute(sa.insert(rerate_runs), values)

    def run(self, run_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(rerate_runs).where(rerate_runs.c.id == run_id)
                                 ).one_or_none()

    def runs(self, limit: int = 50) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(rerate_runs)
                                      .order_by(rerate_runs.c.created_at.desc(),
                                                rerate_runs.c.id.desc()).limit(limit)))

    def mark_run_applied(self, run_id: str, at: datetime, by: str) -> None:
        self.conn.execute(sa.update(rerate_runs).where(rerate_runs.c.id == run_id)
                          .values(status="applied", applied_at=at, applied_by=by))

    def applied(self, run_id: str, tenant_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(rerate_tenants).where(
            rerate_tenants.c.rerate_id == run_id, rerate_tenants.c.tenant_id == tenant_id)
        ).one_or_none()

    def mark_applied(self, **values: Any) -> None:
        self.conn.execute(sa.insert(rerate_tenants), values)

    # -- what is corrected -------------------------------------------------------------------
    def tenant_ids(self, tenant_id: str | None) -> list[tuple[str, str]]:
        """(id, currency) of the tenant, or of every tenant, in id order."""
        q = sa.select(tenants.c.id, tenants.c.currency).order_by(tenants.c.id)
        if tenant_id is not None:
            q = q.where(tenants.c.id == tenant_id)
        return [(r.id, r.currency) for r in self.conn.execute(q)]

    def settled_calls(self, tenant_id: str, start: datetime, end: datetime) -> list[sa.Row]:
        """The tenant's settled calls that started in [start, end), with their usage record
        and what the call row stores (route, grant), oldest first."""
        u, c = usage_records, calls
        q = (sa.select(u.c.id.label("usage_id"), u.c.ref.label("call_id"), u.c.duration_s,
                       u.c.included_minutes, u.c.credits_charge, u.c.uncollected,
                       u.c.overage_charge, u.c.charge, u.c.start_time, u.c.original_charge,
                       c.c.route, c.c.pool_s, c.c.credit_s, c.c.credit_reserved, c.c.with_fee,
                       c.c.tail, c.c.ended_at)
             .select_from(u.join(c, sa.and_(c.c.call_id == u.c.ref,
                                            c.c.tenant_id == u.c.tenant_id)))
             .where(u.c.tenant_id == tenant_id, u.c.kind == "call",
                    u.c.start_time >= start, u.c.start_time < end, c.c.status == "ended")
             .order_by(u.c.start_time, u.c.id))
        return list(self.conn.execute(q))

    def usage(self, tenant_id: str, usage_ids: list[str]) -> dict[str, sa.Row]:
        u = usage_records
        rows = self.conn.execute(sa.select(u).where(u.c.tenant_id == tenant_id,
                                                    u.c.id.in_(usage_ids)))
        return {r.id: r for r in rows}

    def usage_by_refs(self, tenant_id: str
                      ) -> dict[tuple[str, str], tuple[str, datetime | None, Decimal]]:
        """(kind, ref) → (usage id, when its charge was settled, what credits were asked:
        charged + uncollected) for every usage record of the tenant (settled: a call's
        ``ended_at``, an SMS's ``end_time``), in the order they were settled (ties: start
        time, then id), which is the order the replay gives charges that have no entry."""
        u, c = usage_records, calls
        settled = sa.type_coerce(sa.func.coalesce(c.c.ended_at, u.c.end_time), UtcDateTime)
        q = (sa.select(u.c.kind, u.c.ref, u.c.id, settled, u.c.credits_charge,
                       u.c.uncollected)
             .select_from(u.outerjoin(c, sa.and_(c.c.call_id == u.c.ref, u.c.kind == "call",
                                                 c.c.tenant_id == u.c.tenant_id)))
             .where(u.c.tenant_id == tenant_id).order_by(settled, u.c.start_time, u.c.id))
        return {(r[0], r[1]): (r[2], r[3], r[4] + r[5])
                for r in self.conn.execute(q)}

    def ledger(self, tenant_id: str) -> Iterator[tuple[sa.Row, list[tuple[str, str, Decimal]]]]:
        """Every transaction of the tenant in ``seq`` order with its postings."""
        t, p = ledger_transactions, ledger_postings
        legs: dict[str, list[tuple[str, str, Decimal]]] = {}
        for r in self.conn.execute(sa.select(p.c.transaction_id, p.c.debit_account,
                                             p.c.credit_account, p.c.amount)
                                   .where(p.c.tenant_id == tenant_id).order_by(p.c.id)):
            legs.setdefault(r.transaction_id, []).append((r.debit_account, r.credit_account,
                                                          r.amount))
        for row in self.conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id)
                                     .order_by(t.c.seq)):
            yield row, legs.get(row.id, [])

    def lot_rows(self, tenant_id: str) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(lots).where(lots.c.tenant_id == tenant_id)))

    def add_correction(self, **values: Any) -> None:
        self.conn.execute(sa.insert(usage_corrections), values)

    def corrections(self, tenant_id: str, usage_id: str) -> list[sa.Row]:
        q = (sa.select(usage_corrections).where(usage_corrections.c.tenant_id == tenant_id,
                                                usage_corrections.c.usage_id == usage_id)
             .order_by(usage_corrections.c.at, usage_corrections.c.id))
        return list(self.conn.execute(q))

    def update_usage(self, tenant_id: str, usage_id: str, **values: Any) -> None:
        u = usage_records
        self.conn.execute(sa.update(u).where(u.c.tenant_id == tenant_id, u.c.id == usage_id)
                          .values(**values))
