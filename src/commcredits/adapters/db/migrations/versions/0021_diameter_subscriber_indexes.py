"""Indexes to find a Diameter subscriber: users by phone number and by UPN across tenants

A Credit-Control request names its user by Subscription-Id alone (END_USER_E164: the user's
``phone_number``; END_USER_SIP_URI: ``sip:UPN``), not by tenant: each CCR-Initial looks the
user up by one of them, which without these indexes reads the whole users table.

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_users_phone_number', 'users', ['phone_number'])
    op.create_index('ix_users_upn_lower', 'users', [sa.text('lower(upn)')])


def downgrade() -> None:
    op.drop_index('ix_users_upn_lower', table_name='users')
    op.drop_index('ix_users_phone_number', table_name='users')
