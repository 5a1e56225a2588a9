"""What switches need beyond calls: cuts to push to them, and SIP domains naming tenants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import sip_domains, switch_cuts


class SwitchingRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    # -- cuts --------------------------------------------------------------------------------
    def add_cut(self, **values: Any) -> None:
        self.conn.execute(sa.insert(switch_cuts), values)

    def due_cuts(self, now: datetime, limit: int = 500) -> list[sa.Row]:
        return list(self.conn.execute(
            sa.select(switch_cuts).where(switch_cuts.c.status == "pending",
                                         switch_cuts.c.next_attempt_at <= now)
            .order_by(switch_cuts.c.next_attempt_at).limit(limit)))

    def cuts_of_calls(self, call_ids: list[str], statuses: tuple[str, ...]) -> list[sa.Row]:
        if not call_ids:
            return []
        return list(self.conn.execute(sa.select(switch_cuts).where(
            switch_cuts.c.call_id.in_(call_ids), switch_cuts.c.status.in_(statuses))))

    def cut(self, cut_id: str, *, lock: bool = False) -> sa.Row | None:
        q = sa.select(switch_cuts).where(switch_cuts.c.id == cut_id)
        if lock and self.conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        return self.conn.execute(q).first()

    def update_cut(self, cut_id: str, **values: Any) -> None:
        self.conn.execute(sa.update(switch_cuts).where(switch_cuts.c.id == cut_id)
                          .values(**values))

    def cuts(self, tenant_id: str | None = None, limit: int = 100) -> list[sa.Row]:
        q = sa.select(switch_cuts).order_by(switch_cuts.c.created_at.desc()).limit(limit)
        if tenant_id:
            q = q.where(switch_cuts.c.tenant_id == tenant_id)
        return list(self.conn.execute(q))

    # -- SIP domains -------------------------------------------------------------------------
    def tenant_of_domain(self, domain: str) -> str | None:
        return self.conn.scalar(sa.select(sip_domains.c.tenant_id)
                                .where(sip_domains.c.domain == domain))

    def domains(self, tenant_id: str) -> list[str]:
        return list(self.conn.scalars(sa.select(sip_domains.c.domain).where(
            sip_domains.c.tenant_id == tenant_id).order_by(sip_domains.c.domain)))

    def set_domains(self, tenant_id: str, domains: list[str]) -> None:
        self.conn.execute(sa.delete(sip_domains).where(sip_domains.c.tenant_id == tenant_id))
        if domains:
            self.conn.execute(sa.insert(sip_domains),
                              [{"domain": d, "tenant_id": tenant_id} for d in domains])
