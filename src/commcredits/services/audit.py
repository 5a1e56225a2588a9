"""The audit log of admin actions (who, role, when, what, before → after), from the API,
the CLI and the console alike.

Entry points say who acts by setting ``uow.actor`` (an :class:`Actor`); services call
:func:`record` next to the change they make, in the same transaction, so an entry exists
exactly when the change committed. Work nobody asked for (jobs, auto-recharges) is recorded
as ``system``. The log is append-only: the repository has no update or delete and the
database refuses both.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from commcredits.domain.access import Principal
from commcredits.domain.csv_cells import neutral_row
from commcredits.domain.errors import invalid

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork

MAX_PAGE = 1000
CSV_COLUMNS = ("id", "at", "actor", "actor_role", "via", "action", "target", "before", "after")


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    role: str
    label: str  # an admin's email, an API key's id
    via: str  # api | console | cli | job

    @classmethod
    def of(cls, who: Principal, via: str, label: str | None = None) -> Actor:
        return cls(who.id, who.role.value, label or who.id, via)


SYSTEM = Actor("system", "system", "system", "job")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def record(uow: UnitOfWork, tenant_id: str | None, action: str, target: str,
           before: Any = None, after: Any = None) -> None:
    """Append one entry in ``uow``'s transaction. Nothing is recorded for a no-op change."""
    if before is not None and before == after:
        return
    actor: Actor = getattr(uow, "actor", None) or SYSTEM
    uow.audit.append(tenant_id=tenant_id, at=uow.now, actor_id=actor.id[:40],
                     actor_role=actor.role, actor=actor.label[:320], via=actor.via,
                     action=action, target=target[:400], before=_json(before),
                     after=_json(after))


def view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.tenant_id, "at": row.at.isoformat(),
            "actor": row.actor, "actor_id": row.actor_id, "actor_role": row.actor_role,
            "via": row.via,
            "action": row.action, "target": row.target,
            "before": None if row.before is None else json.loads(row.before),
            "after": None if row.after is None else json.loads(row.after)}


def entries(uow: UnitOfWork, tenant_id: str, limit: object = 100,
            before_id: object = None) -> list[dict[str, Any]]:
    """A tenant's entries, newest first, ``limit`` at a time (``before_id`` pages on)."""
    from commcredits.services.tenants import get_tenant
    get_tenant(uow, tenant_id)
    n = _int(limit, "limit", 1, MAX_PAGE)
    before = None if before_id in (None, "") else _int(before_id, "before_id", 1, 2**62)
    return [view(r) for r in uow.audit.entries(tenant_id, limit=n, before_id=before)]


def csv_lines(uow: UnitOfWork, tenant_id: str) -> Iterator[str]:
    """The tenant's whole log as CSV, oldest first (before/after as JSON text)."""
    from commcredits.services.tenants import get_tenant
    get_tenant(uow, tenant_id)
    rows = list(reversed(uow.audit.entries(tenant_id)))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(neutral_row([r.id, r.at.isoformat(), r.actor, r.actor_role, r.via,
                                     r.action, r.target, r.before or "", r.after or ""]))
    yield buf.getvalue()


def _int(value: object, field: str, low: int, high: int) -> int:
    try:
        n = int(str(value))
    except ValueError:
        raise invalid("validation_error", f"{field} must be a whole number") from None
    if not low <= n <= high:
        raise invalid("validation_error", f"{field} must be {low} to {high}")
    return n
