"""users.aad_object_id: the user's Entra ID (Azure AD) object id, for the usage exports

The PSTN and SMS exports have an ``AAD ObjectId`` column, as the Teams admin center's do;
it held the internal ``usr_…`` id. A user created with its GUID now carries it there. One
GUID names one user of a tenant (NULLs allowed: users created without one).

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


def downgrade() -> None:
    op.drop_index('uq_users_tenant_aad_object_id', table_name='users')
    op.drop_column('users', 'aad_object_id')  # SQLite 3.35+ drops a column in place
