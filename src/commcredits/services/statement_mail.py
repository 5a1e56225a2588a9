"""The month-close e-mail: once a month is over, each tenant's billing contacts get a
``monthly_statement`` notification with its statement, through the outbox like every other
notice (``services.notify``), exactly once per tenant and month across the cluster.

Once per tenant and month: a row of ``statement_mailings`` (primary key tenant + month) is
inserted in the transaction that queues the notice (``INSERT … ON CONFLICT DO NOTHING``). Two
instances racing for the same tenant block on the key until the first commits; the second
then inserts nothing and queues nothing. A run that fails rolls its claim back, so the next
run tries again. The month mailed is the last one that ended; a tenant created after it
ended has no statement of it, and one whose balance did not move that month (no ledger
transaction) gets no e-mail: its statement can still be downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from commcredits.adapters.db.schema import statement_mailings, tenants
from commcredits.domain import notifications as notes
from commcredits.domain import statements as rules
from commcredits.services import notify, statements
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def last_closed_month(uow: UnitOfWork) -> str:
    previous = uow.now.replace(day=1) - relativedelta(months=1)
    return f"{previous.year:04d}-{previous.month:02d}"


def due(uow: UnitOfWork, month: str) -> list[str]:
    """Tenants that existed when ``month`` ended and have not been mailed its statement."""
    _, end = rules.parse_month(month)
    mailed = sa.select(statement_mailings.c.tenant_id).where(statement_mailings.c.month == month)
    q = (sa.select(tenants.c.id).where(tenants.c.created_at < end, tenants.c.id.not_in(mailed))
         .order_by(tenants.c.id))
    return list(uow.conn.scalars(q))


def claim(uow: UnitOfWork, tenant_id: str, month: str) -> bool:
    """Take (tenant, month) for this transaction; False when another run has it."""
    insert = pg_insert if uow.postgres else sqlite_insert
    done = uow.conn.execute(insert(statement_mailings)
                            .values(tenant_id=tenant_id, month=month, claimed_at=uow.now)
                            .on_conflict_do_nothing())
    return bool(done.rowcount)


def mail_one(uow: UnitOfWork, tenant_id: str, month: str) -> int:
    """Claim and queue one tenant's notice (rows queued; 0: taken, or nothing to say)."""
    if not claim(uow, tenant_id, month):
        return 0
    view = statements.statement(uow, tenant_id, month)
    if view["transactions"] == 0:
        return 0  # nothing moved: no news (the claim keeps it from being asked again)
    tenant = get_tenant(uow, tenant_id)
    notice = notes.monthly_statement(tenant.name, tenant.id, month,
                                     [(label, amount) for _, label, amount in
                                      rules.lines(view)], view["currency"])
    return notify.queue(uow, tenant, notice)
