"""Tables of the switch link: the cuts to push to it and the SIP domains it may name. Part
of :mod:`schema` (import them from there): they share its metadata."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import Id, metadata
from commcredits.adapters.db.base import tenant_fk as _tenant_fk
from commcredits.adapters.db.types import UtcDateTime

# calls the switch must end now: an outbox delivered to COMMCREDITS_SWITCH_CUT_URL
switch_cuts = sa.Table(
    "switch_cuts", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), nullable=False, primary_key=True),
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending|sent|failed|no_receiver
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("call_id", "tenant_id", name="uq_switch_cuts_call_id_tenant"),
)
sa.Index("ix_switch_cuts_status", switch_cuts.c.status, switch_cuts.c.next_attempt_at)

# SIP domains a switch may name instead of a tenant id
sip_domains = sa.Table(
    "sip_domains", metadata,
    sa.Column("domain", sa.String(253), primary_key=True),  # one tenant's: services check
    _tenant_fk(primary_key=True),
)
