"""Totals of a usage report's period, for the console's summary line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from commcredits.adapters.db.repositories.charging import usage_filter
from commcredits.adapters.db.schema import usage_records


@dataclass(frozen=True, slots=True)
class UsageTotals:
    records: int
    duration_s: int
    segments: int
    charge: Decimal
    uncollected: Decimal  # usage that happened but credits could not pay


def usage_totals(conn: sa.Connection, tenant_id: str, kind: str, start: datetime,
                 end: datetime, upn: str | None = None) -> UsageTotals:
    """Records, seconds, SMS segments, charges and uncollected amounts with ``start <=
    start_time < end``, of one user (any case) when ``upn`` is given."""
    u = usage_records
    q = (sa.select(sa.func.count(), sa.func.sum(u.c.duration_s), sa.func.sum(u.c.segments),
                   sa.func.sum(u.c.charge), sa.func.sum(u.c.uncollected))
         .where(*usage_filter(tenant_id, kind, start, end, upn)))
    n, seconds, segments, charge, uncollected = conn.execute(q).one()
    # SUM keeps the Amount type, so the amounts come back as exact Decimals
    return UsageTotals(int(n or 0), int(seconds or 0), int(segments or 0),
                       charge if charge is not None else Decimal(0),
                       uncollected if uncollected is not None else Decimal(0))
