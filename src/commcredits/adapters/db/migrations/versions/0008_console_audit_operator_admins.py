"""audit log, operator admins, removable and default payment methods

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import commcredits.adapters.db.types

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('tenant_id', sa.String(length=40), nullable=True),
        sa.Column('at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.Column('actor_id', sa.String(length=40), nullable=False),
        sa.Column('actor_role', sa.String(length=30), nullable=False),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('via', sa.String(length=10), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('target', sa.String(length=400), nullable=False),
        sa.Column('before', sa.Text(), nullable=True),
        sa.Column('after', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )
    op.create_index('ix_audit_log_tenant_id_id', 'audit_log', ['tenant_id', 'id'], unique=False)
    op.create_table(
        'operator_admins',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('password_hash', sa.String(length=300), nullable=False),
        sa.Column('created_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_admins')),
        sa.UniqueConstraint('email', name=op.f('uq_operator_admins_email')),
    )
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_default', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('removed_at',
                                      commcredits.adapters.db.types.UtcDateTime(),
                                      nullable=True))
    if op.get_context().dialect.name == 'postgresql':  # append-only, enforced by the database
        op.execute("""
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""")
    else:
        op.execute("""
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""")
        op.execute("""
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""")


def downgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
        batch_op.drop_column('is_default')
    op.drop_table('operator_admins')
    op.drop_index('ix_audit_log_tenant_id_id', table_name='audit_log')
    op.drop_table('audit_log')
