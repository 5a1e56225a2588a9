"""wallet_and_lots(tenant): lock the wallet, then read it with the tenant's lots (PostgreSQL)

Every reservation and settlement reads the wallet under its row lock and then the lots. In one
SELECT ... FOR UPDATE joined to the lots, a statement that waited for the lock sees the wallet
as committed by the holder (PostgreSQL re-reads the locked row) but the lots as they were when
it started: a lost update. This function takes the lock in one statement and reads in the
next (a new snapshot under READ COMMITTED): one round trip, and the lots are current.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""
from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION wallet_and_lots(p_tenant varchar) RETURNS TABLE (
  tenant_id varchar, currency varchar, balance bigint, reserved bigint, lot_seq integer,
  txn_seq integer, ar_enabled boolean, ar_recharge_amount bigint, ar_trigger_amount bigint,
  ar_payment_method_id varchar, ar_status varchar, ar_armed boolean, zero_notified boolean,
  l_id varchar, l_seq integer, l_amount bigint, l_remaining bigint,
  l_purchased_at timestamp, l_expires_at timestamp, l_source varchar)
AS $$
#variable_conflict use_column
BEGIN
  PERFORM 1 FROM wallets w WHERE w.tenant_id = p_tenant FOR UPDATE;
  RETURN QUERY
    SELECT w.tenant_id::varchar, w.currency::varchar, w.balance, w.reserved, w.lot_seq,
           w.txn_seq, w.ar_enabled, w.ar_recharge_amount, w.ar_trigger_amount,
           w.ar_payment_method_id::varchar, w.ar_status::varchar, w.ar_armed, w.zero_notified,
           l.id::varchar, l.seq, l.amount, l.remaining, l.purchased_at, l.expires_at,
           l.source::varchar
      FROM wallets w LEFT JOIN lots l ON l.tenant_id = w.tenant_id
     WHERE w.tenant_id = p_tenant
     ORDER BY l.purchased_at, l.seq;
END $$ LANGUAGE plpgsql"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION wallet_and_lots(varchar)")
