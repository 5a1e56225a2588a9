"""users.aad_object_id (the Entra ID object id for the usage exports) and
payment_attempts.refund_reference (a refund of money taken that no lot holds)

The PSTN and SMS exports have an ``AAD ObjectId`` column, as the Teams admin center's do;
it held the internal ``usr_…`` id. A user created with its GUID now carries it there. One
GUID names one user of a tenant (NULLs allowed: users created without one). A card payment
the gateway took but that could not become credits (``charged``) can be refunded: the
attempt becomes ``refunded`` with the gateway's refund id.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (no batch table copy on SQLite: it would rebuild the table and its
    # expression index on lower(upn))
    op.add_column('users', sa.Column('aad_object_id', sa.String(length=36), nullable=True))
    op.create_index('uq_users_tenant_aad_object_id', 'users', ['tenant_id', 'aad_object_id'],
                    unique=True)
    op.add_column('payment_attempts', sa.Column('refund_reference', sa.String(length=200),
                                                nullable=True))


def downgrade() -> None:
    op.drop_column('payment_attempts', 'refund_reference')
    op.drop_index('uq_users_tenant_aad_object_id', table_name='users')
    op.drop_column('users', 'aad_object_id')  # SQLite 3.35+ drops a column in place
