"""re-rating (issue 21): rerate_runs, rerate_tenants, usage_corrections, and
usage_records.original_charge

A run is computed as a dry run (its diff kept as JSON) and applied per tenant: the
``rerate_tenants`` row is written in the transaction that posts the tenant's correcting
ledger entries, so a run corrects a tenant once, all or nothing. ``usage_corrections`` keeps
each corrected call (old and new charge); ``usage_records.original_charge`` the charge it was
first settled at (NULL: never corrected).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from commcredits.adapters.db.types import Amount, UtcDateTime

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rerate_runs',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('period_from', sa.String(length=10), nullable=False),
        sa.Column('period_to', sa.String(length=10), nullable=False),
        sa.Column('deck', sa.String(length=20), nullable=True),
        sa.Column('tenant_id', sa.String(length=40), nullable=True),
        sa.Column('diff', sa.Text(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=320), nullable=False),
        sa.Column('applied_at', UtcDateTime(), nullable=True),
        sa.Column('applied_by', sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rerate_runs')))
    op.create_table(
        'rerate_tenants',
        sa.Column('rerate_id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.Column('applied_at', UtcDateTime(), nullable=False),
        sa.Column('applied_by', sa.String(length=320), nullable=False),
        sa.Column('corrections', sa.Integer(), nullable=False),
        sa.Column('balance_delta', Amount(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_rerate_tenants_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('rerate_id', 'tenant_id', name=op.f('pk_rerate_tenants')))
    op.create_index(op.f('ix_rerate_tenants_tenant_id'), 'rerate_tenants', ['tenant_id'])
    op.create_table(
        'usage_corrections',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.Column('rerate_id', sa.String(length=40), nullable=False),
        sa.Column('usage_id', sa.String(length=40), nullable=False),
        sa.Column('call_id', sa.String(length=200), nullable=False),
        sa.Column('old_charge', Amount(), nullable=False),
        sa.Column('new_charge', Amount(), nullable=False),
        sa.Column('delta', Amount(), nullable=False),
        sa.Column('at', UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_usage_corrections_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', 'tenant_id', name=op.f('pk_usage_corrections')),
        sa.UniqueConstraint('tenant_id', 'rerate_id', 'usage_id',
                            name='uq_usage_corrections_run_usage'))
    op.create_index(op.f('ix_usage_corrections_tenant_id'), 'usage_corrections', ['tenant_id'])
    op.create_index('ix_usage_corrections_usage', 'usage_corrections',
                    ['tenant_id', 'usage_id'])
    op.add_column('usage_records', sa.Column('original_charge', Amount(), nullable=True))


def downgrade() -> None:
    op.drop_column('usage_records', 'original_charge')
    op.drop_index('ix_usage_corrections_usage', table_name='usage_corrections')
    op.drop_index(op.f('ix_usage_corrections_tenant_id'), table_name='usage_corrections')
    op.drop_table('usage_corrections')
    op.drop_index(op.f('ix_rerate_tenants_tenant_id'), table_name='rerate_tenants')
    op.drop_table('rerate_tenants')
    op.drop_table('rerate_runs')
