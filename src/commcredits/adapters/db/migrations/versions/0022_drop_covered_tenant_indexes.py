"""drop the single-column tenant_id indexes that a composite index already covers

``usage_records`` and ``ledger_transactions`` get one new row per rated call; every index on
them is work for each of those rows (a CDR import writes a million). Two of those indexes
only restate another: ``ix_usage_records_tenant_id`` is the leading column of
``ix_usage_records_period`` (tenant_id, kind, start_time) and of ``uq_usage_records_ref``
(tenant_id, kind, ref); ``ix_ledger_transactions_tenant_id`` is the leading column of
``uq_ledger_transactions_tenant_seq`` (tenant_id, seq). A lookup by tenant (the tenant
foreign key's check included) uses the composite one as well. Kept: ``ix_calls_tenant_id``
and ``ix_ledger_postings_tenant_id``, which no index starting with tenant_id covers.

Revision ID: 0022
Revises: 0016
Create Date: 2026-12-08
"""
from __future__ import annotations

from alembic import op

revision = '0022'
down_revision = '0016'
branch_labels = None
depends_on = None

_COVERED = (('ix_usage_records_tenant_id', 'usage_records'),
            ('ix_ledger_transactions_tenant_id', 'ledger_transactions'))


def upgrade() -> None:
    for name, table in _COVERED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table in _COVERED:
        op.create_index(name, table, ['tenant_id'], unique=False)
