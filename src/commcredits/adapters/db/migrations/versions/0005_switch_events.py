"""a real switch in front: answer events, final grants, cuts pushed to switches, SIP domains

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import commcredits.adapters.db.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_at', commcredits.adapters.db.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('final', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('cut_reason', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('settled_by', sa.String(length=10), nullable=True))
    op.create_table(
        'switch_cuts',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.Column('call_id', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('created_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.Column('sent_at', commcredits.adapters.db.types.UtcDateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_switch_cuts_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_switch_cuts')),
        sa.UniqueConstraint('call_id', name=op.f('uq_switch_cuts_call_id')),
    )
    op.create_index(op.f('ix_switch_cuts_status'), 'switch_cuts', ['status', 'next_attempt_at'], unique=False)
    op.create_table(
        'sip_domains',
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sip_domains_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('domain', name=op.f('pk_sip_domains')),
    )
    op.create_index(op.f('ix_sip_domains_tenant_id'), 'sip_domains', ['tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sip_domains_tenant_id'), table_name='sip_domains')
    op.drop_table('sip_domains')
    op.drop_index(op.f('ix_switch_cuts_status'), table_name='switch_cuts')
    op.drop_table('switch_cuts')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('settled_by')
        batch_op.drop_column('cut_reason')
        batch_op.drop_column('final')
        batch_op.drop_column('answered_at')
