"""Totals of a usage report's period, for the console's summary line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from commcredits.adapters.db.schema import usage_records


@dataclass(frozen=True, slots=True)
class UsageTotals:
    records: int
    duration_s: int
    segments: int
    charge: Decimal


def usage_totals(conn: sa.Connection, tenant_id: str, kind: str, start: datetime,
                 end: datetime, upn: str | None = None) -> UsageTotals:
    """Records, seconds, SMS segments and charges with ``start <= start_time < end``, of
    one user (any case) when ``upn`` is given."""
    u = usage_records
    q = (sa.select(sa.func.count(), sa.func.sum(u.c.duration_s), sa.func.sum(u.c.segments),
                   sa.func.sum(u.c.charge))
         .where(u.c.tenant_id == tenant_id, u.c.kind == kind, u.c.start_time >= start,
                u.c.start_time < end))
    if upn:
        q = q.where(sa.func.lower(u.c.upn) == upn.lower())
    n, seconds, segments, charge = conn.execute(q).one()
    # SUM keeps the Amount type, so the charge comes back as an exact Decimal
    return UsageTotals(int(n or 0), int(seconds or 0), int(segments or 0),
                       charge if charge is not None else Decimal(0))
