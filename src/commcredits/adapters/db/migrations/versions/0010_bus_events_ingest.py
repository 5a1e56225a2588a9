"""domain events outbox (with settled calls captured by a trigger), ingest consumers' status

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import commcredits.adapters.db.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_PG_CAPTURE = """
CREATE FUNCTION usage_records_capture() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM event_capture) THEN
    INSERT INTO domain_events (tenant_id, dedupe, kind, ref, occurred_at)
    SELECT tenant_id, 'call_settled:' || id, 'call_settled', id, end_time
      FROM new_rows WHERE kind = 'call'
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql"""
# one INSERT per statement (a COPY of a whole batch of usage records included)
_PG_TRIGGER = """
CREATE TRIGGER usage_records_capture AFTER INSERT ON usage_records
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_records_capture()"""
_SQLITE_TRIGGER = """
CREATE TRIGGER usage_records_capture AFTER INSERT ON usage_records
WHEN NEW.kind = 'call' AND EXISTS (SELECT 1 FROM event_capture)
BEGIN
  INSERT OR IGNORE INTO domain_events (tenant_id, dedupe, kind, ref, occurred_at)
  VALUES (NEW.tenant_id, 'call_settled:' || NEW.id, 'call_settled', NEW.id, NEW.end_time);
END"""


def upgrade() -> None:
    op.create_table(
        'domain_events',
        sa.Column('tenant_id', sa.String(length=40), nullable=False),
        sa.Column('dedupe', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('data', sa.Text(), nullable=True),
        sa.Column('ref', sa.String(length=40), nullable=True),
        sa.Column('occurred_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.Column('published_at', commcredits.adapters.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_domain_events_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('tenant_id', 'dedupe', name=op.f('pk_domain_events')),
    )
    op.create_index('ix_domain_events_unpublished', 'domain_events',
                    ['published_at', 'occurred_at'], unique=False)
    op.create_table(
        'event_capture',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('since', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_event_capture')),
    )
    op.create_table(
        'ingest_consumers',
        sa.Column('stream', sa.String(length=100), nullable=False),
        sa.Column('durable', sa.String(length=100), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('rated', sa.BigInteger(), nullable=False),
        sa.Column('duplicate', sa.BigInteger(), nullable=False),
        sa.Column('blocked', sa.BigInteger(), nullable=False),
        sa.Column('dead', sa.BigInteger(), nullable=False),
        sa.Column('pending', sa.BigInteger(), nullable=False),
        sa.Column('ack_pending', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', commcredits.adapters.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('stream', 'durable', name=op.f('pk_ingest_consumers')),
    )
    if op.get_context().dialect.name == 'postgresql':
        op.execute(_PG_CAPTURE)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS usage_records_capture" + (
        " ON usage_records" if op.get_context().dialect.name == 'postgresql' else ""))
    if op.get_context().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION usage_records_capture()")
    op.drop_table('ingest_consumers')
    op.drop_table('event_capture')
    op.drop_index('ix_domain_events_unpublished', table_name='domain_events')
    op.drop_table('domain_events')
