"""payment_methods.fingerprint: the gateway's mark of a card number (Stripe's)

Every SetupIntent gives a new PaymentMethod, so the same card saved twice through Stripe has
two tokens; Stripe's ``card.fingerprint`` (the same for the same number within the account)
with the expiry is how the service knows it is the card the tenant already has. Nullable:
the test gateway has none, nor do cards saved before this.

Revision ID: 0017
Revises: 0022
Create Date: 2026-12-08
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('fingerprint')
