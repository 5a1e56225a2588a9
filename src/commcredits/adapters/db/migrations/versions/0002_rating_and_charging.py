"""rating and charging

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import commcredits.adapters.db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_decks',
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('imported_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('currency', name=op.f('pk_rate_decks'))
    )
    op.create_table('rate_rows',
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('prefix', sa.String(length=15), nullable=False),
    sa.Column('number_type', sa.String(length=20), nullable=False),
    sa.Column('destination', sa.String(length=200), nullable=False),
    sa.Column('per_minute', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('connection_fee', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('increment_s', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('currency', 'prefix', 'number_type', name=op.f('pk_rate_rows'))
    )
    op.create_table('calls',
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('call_type', sa.String(length=20), nullable=False),
    sa.Column('from_number', sa.String(length=40), nullable=False),
    sa.Column('to_number', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=True),
    sa.Column('conference_id', sa.String(length=200), nullable=True),
    sa.Column('decision', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('route', sa.Text(), nullable=False),
    sa.Column('pool', sa.String(length=60), nullable=True),
    sa.Column('pool_month', sa.String(length=7), nullable=True),
    sa.Column('pool_s', sa.Integer(), nullable=False),
    sa.Column('credit_s', sa.Integer(), nullable=False),
    sa.Column('credit_reserved', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('with_fee', sa.Boolean(), nullable=True),
    sa.Column('tail', sa.String(length=10), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('started_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.Column('last_seen_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.Column('elapsed_s', sa.Integer(), nullable=False),
    sa.Column('ended_at', commcredits.adapters.db.types.UtcDateTime(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_calls_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_calls'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index('ix_calls_active', ['status', 'last_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('messages',
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('created_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_messages_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('pool_usage',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('pool', sa.String(length=60), nullable=False),
    sa.Column('used_minutes', sa.Integer(), nullable=False),
    sa.Column('reserved_s', sa.Integer(), nullable=False),
    sa.Column('alerted', sa.Integer(), nullable=False),
    sa.CheckConstraint('reserved_s >= 0', name=op.f('ck_pool_usage_reserved_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_pool_usage_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'month', 'pool', name=op.f('pk_pool_usage'))
    )
    op.create_table('recharges',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('amount', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', commcredits.adapters.db.types.UtcDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recharges_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recharges'))
    )
    with op.batch_alter_table('recharges', schema=None) as batch_op:
        batch_op.create_index('ix_recharges_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recharges_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('usage_records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=5), nullable=False),
    sa.Column('ref', sa.String(length=200), nullable=False),
    sa.Column('conference_id', sa.String(length=200), nullable=True),
    sa.Column('user_location', sa.String(length=2), nullable=True),
    sa.Column('user_id', sa.String(length=40), nullable=True),
    sa.Column('upn', sa.String(length=320), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('caller_id', sa.String(length=40), nullable=True),
    sa.Column('call_type', sa.String(length=20), nullable=False),
    sa.Column('number_type', sa.String(length=20), nullable=True),
    sa.Column('scope', sa.String(length=15), nullable=True),
    sa.Column('destination', sa.String(length=200), nullable=True),
    sa.Column('destination_number', sa.String(length=40), nullable=True),
    sa.Column('start_time', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.Column('end_time', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=True),
    sa.Column('connection_fee', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('charge', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('capability', sa.String(length=30), nullable=False),
    sa.Column('funding', sa.String(length=10), nullable=False),
    sa.Column('included_minutes', sa.Integer(), nullable=False),
    sa.Column('credits_charge', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('overage_charge', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('uncollected', commcredits.adapters.db.types.Amount(), nullable=False),
    sa.Column('lots', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_records_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_records')),
    sa.UniqueConstraint('tenant_id', 'kind', 'ref', name='uq_usage_records_ref')
    )
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index('ix_usage_records_period', ['tenant_id', 'kind', 'start_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_records_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_premium', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('blocked_prefixes', sa.String(length=1000), server_default='', nullable=False))

    with op.batch_alter_table('wallets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ar_armed', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('zero_notified', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('wallets', schema=None) as batch_op:
        batch_op.drop_column('zero_notified')
        batch_op.drop_column('ar_armed')

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('blocked_prefixes')
        batch_op.drop_column('allow_premium')

    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_records_tenant_id'))
        batch_op.drop_index('ix_usage_records_period')

    op.drop_table('usage_records')
    with op.batch_alter_table('recharges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recharges_tenant_id'))
        batch_op.drop_index('ix_recharges_due')

    op.drop_table('recharges')
    op.drop_table('pool_usage')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_tenant_id'))

    op.drop_table('messages')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_tenant_id'))
        batch_op.drop_index('ix_calls_active')

    op.drop_table('calls')
    op.drop_table('rate_rows')
    op.drop_table('rate_decks')
