"""Minute pools: this month's counters and the minute-pools report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import pool_usage
from commcredits.domain import pools as poolrules
from commcredits.domain.dates import check_month
from commcredits.domain.pools import PoolKey
from commcredits.services.charging import pool_total
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def _previous(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def open_month(uow: UnitOfWork) -> int:
    """Open this month's counters (at zero) for every pool used last month."""
    month = poolrules.month_of(uow.now)
    last = _previous(month)
    rows = uow.conn.execute(sa.select(pool_usage.c.tenant_id, pool_usage.c.pool)
                            .where(pool_usage.c.month == last)).all()
    opened = 0
    for tenant_id, pool in rows:
        exists = uow.conn.scalar(sa.select(sa.func.count()).select_from(pool_usage).where(
            pool_usage.c.tenant_id == tenant_id, pool_usage.c.month == month,
            pool_usage.c.pool == pool))
        if not exists:
            uow.charging.pool(tenant_id, month, pool)
            opened += 1
    return opened


def report(uow: UnitOfWork, tenant_id: str, month: str | None) -> list[dict[str, Any]]:
    """Every pool the tenant's licenses give it this month: total, used, left (minutes)."""
    get_tenant(uow, tenant_id)
    month = check_month(month) if month else poolrules.month_of(uow.now)
    keys: set[PoolKey] = set()
    for user in uow.directory.users(tenant_id):
        keys.update(poolrules.pools_of(user.licenses, user.usage_location))
    used = {row.pool: row.used_minutes for row in uow.charging.pools(tenant_id, month)}
    keys.update(PoolKey.parse(code) for code in used)
    out = []
    for key in sorted(keys):
        total = pool_total(uow, tenant_id, key)
        spent = used.get(key.code, 0)
        out.append({"pool": key.code, "name": key.label, "country": key.country,
                    "plan": key.plan, "month": month, "minutes_total": total,
                    "minutes_used": spent, "minutes_left": max(0, total - spent)})
    return out
