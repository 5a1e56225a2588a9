"""usage_records.detail (what a charge's explanation is made of, stored when it settled) and
statement_mailings (the month-close e-mail, claimed once per tenant and month)

``detail`` is one JSON text per usage record, written in the charging engine's bulk insert
with the rest of the row: the deck version and the rate line that priced it, the seconds
split (pool, credits, overage) and the increment that rounded them, the pool counter before
and after, each lot's expiry and the ledger transaction ids. Records settled before this
migration have none (their explanation says what the row and the call still tell).
``statement_mailings`` has one row per (tenant, month): the job that inserts it first sends
that month's statement notice; any other instance finds it taken.

Revision ID: 0019
Revises: 0021
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from commcredits.adapters.db.types import UtcDateTime

revision = '0019'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: appended last, so charging_write's json_populate_recordset
    # (NULL::usage_records) fills it by name like every other column
    op.add_column('usage_records', sa.Column('detail', sa.Text(), nullable=True))
    op.create_table(
        'statement_mailings',
        sa.Column('tenant_id', sa.String(length=40), sa.ForeignKey('tenants.id'),
                  primary_key=True),
        sa.Column('month', sa.String(length=7), primary_key=True),
        sa.Column('claimed_at', UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('statement_mailings')
    op.drop_column('usage_records', 'detail')
