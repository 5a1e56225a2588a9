"""ix_lots_open_fifo: a tenant's lots with money left, in FIFO order (partial index)

The expiry job works in chunks (``services.expiry``): each transaction takes the next few
hundred open lots of one tenant in FIFO order. Without this index every chunk of a tenant
with 200,000 expired lots scanned and sorted all of them; with it the walk stops at the
chunk's end.

Revision ID: 0018
Revises: 0020
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_lots_open_fifo', 'lots', ['tenant_id', 'purchased_at', 'seq'],
                    unique=False, postgresql_where=sa.text('remaining > 0'),
                    sqlite_where=sa.text('remaining > 0'))


def downgrade() -> None:
    op.drop_index('ix_lots_open_fifo', table_name='lots')
