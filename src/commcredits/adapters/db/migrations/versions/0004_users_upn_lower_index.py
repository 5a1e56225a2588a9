"""index users by lower(upn): call decisions look UPNs up case-insensitively

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_tenant_upn_lower", "users",
                    ["tenant_id", sa.text("lower(upn)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_users_tenant_upn_lower", table_name="users")
