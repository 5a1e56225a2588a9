"""payment attempts: every card charge recorded before the gateway is called

Revision ID: 0006
Revises: 0007
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from commcredits.adapters.db.types import Amount, UtcDateTime

revision = '0006'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("amount", Amount, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_method_id", sa.String(40), nullable=False),
        sa.Column("po_number", sa.String(100)),
        sa.Column("client_key", sa.String(200)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("recharge_id", sa.String(40)),
        sa.Column("auto_recharge", sa.Text),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("gateway_reference", sa.String(200)),
        sa.Column("error_code", sa.String(60)),
        sa.Column("order_id", sa.String(40)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_attempts_amount_positive")),
        sa.UniqueConstraint("tenant_id", "client_key", name=op.f("uq_payment_attempts_client_key")),
    )
    op.create_index("ix_payment_attempts_tenant_id", "payment_attempts", ["tenant_id"])
    op.create_index("ix_payment_attempts_open", "payment_attempts", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("payment_attempts")
