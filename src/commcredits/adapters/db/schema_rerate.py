"""Tables of re-rating (issue 21): runs, the per-tenant applied marker, and each corrected
usage record. Part of :mod:`schema` (import them from there): they share its metadata.

A run (``rerate_runs``) is operator-wide (its tenant scope may be every tenant), so it stays
on the Citus coordinator; what a run did to a tenant lives with the tenant."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import Id, metadata
from commcredits.adapters.db.base import tenant_fk as _tenant_fk
from commcredits.adapters.db.types import Amount, UtcDateTime

rerate_runs = sa.Table(
    "rerate_runs", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),  # dry_run | applied
    sa.Column("period_from", sa.String(10), nullable=False),  # ISO dates, inclusive
    sa.Column("period_to", sa.String(10), nullable=False),
    sa.Column("deck", sa.String(20)),  # CURRENCY@VERSION; None: each currency's current deck
    sa.Column("tenant_id", Id),  # None: every tenant
    sa.Column("diff", sa.Text, nullable=False),  # JSON: the run as computed (tenants, calls)
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False),
    sa.Column("applied_at", UtcDateTime),
    sa.Column("applied_by", sa.String(320)),
)

# one row per (run, tenant) once the run's corrections for that tenant are posted: written in
# the transaction that posts them, so a tenant is corrected by a run once, all or nothing
rerate_tenants = sa.Table(
    "rerate_tenants", metadata,
    sa.Column("rerate_id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("applied_at", UtcDateTime, nullable=False),
    sa.Column("applied_by", sa.String(320), nullable=False),
    sa.Column("corrections", sa.Integer, nullable=False),
    sa.Column("balance_delta", Amount, nullable=False),
)

usage_corrections = sa.Table(
    "usage_corrections", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("rerate_id", Id, nullable=False),
    sa.Column("usage_id", Id, nullable=False),
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("old_charge", Amount, nullable=False),
    sa.Column("new_charge", Amount, nullable=False),
    sa.Column("delta", Amount, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant_id", "rerate_id", "usage_id",
                        name="uq_usage_corrections_run_usage"),
)
sa.Index("ix_usage_corrections_usage", usage_corrections.c.tenant_id,
         usage_corrections.c.usage_id)
