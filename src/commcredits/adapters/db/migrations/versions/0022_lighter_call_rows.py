"""lighter rows for the tables every rated call fills: drop indexes and keys that only restate

``calls``, ``usage_records``, ``ledger_transactions`` and ``ledger_postings`` get a row (or
two) per rated call; a CDR import writes a million of each, and every index and every
foreign-key check is work per row. Dropped:

* ``ix_usage_records_tenant_id``: the leading column of ``ix_usage_records_period``
  (tenant_id, kind, start_time) and of ``uq_usage_records_ref``;
  ``ix_ledger_transactions_tenant_id``: the leading column of
  ``uq_ledger_transactions_tenant_seq`` (tenant_id, seq). A lookup by tenant uses those.
* ``ix_ledger_postings_debit_account`` and ``ix_ledger_postings_credit_account``: nothing
  reads postings by account across tenants; every ledger query (balances per account,
  ``ledger verify``) reads one tenant's postings by ``tenant_id``.
* PostgreSQL: the key from ``ledger_postings.tenant_id`` to ``tenants``, implied by the
  posting's key to its transaction (``transaction_id, tenant_id``), whose own key to
  ``tenants`` stays; and the keys from ``calls`` and ``usage_records`` to ``tenants``:
  those rows are only written by a unit of work holding the tenant's wallet row locked
  (itself keyed to ``tenants``), and tenants are never deleted. The ledger keeps every key
  that protects money: transactions to tenants, postings to their transaction, lots,
  wallets. SQLite keeps its keys (dropping one rebuilds the table; a batch there is small).

Kept: ``ix_calls_tenant_id`` and ``ix_ledger_postings_tenant_id``, which no index starting
with tenant_id covers.

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-08
"""
from __future__ import annotations

from alembic import op

revision = '0022'
down_revision = '0018'
branch_labels = None
depends_on = None

_INDEXES = (('ix_usage_records_tenant_id', 'usage_records', 'tenant_id'),
            ('ix_ledger_transactions_tenant_id', 'ledger_transactions', 'tenant_id'),
            ('ix_ledger_postings_debit_account', 'ledger_postings', 'debit_account'),
            ('ix_ledger_postings_credit_account', 'ledger_postings', 'credit_account'))
_TENANT_KEYS = (('fk_ledger_postings_tenant_id_tenants', 'ledger_postings'),
                ('fk_usage_records_tenant_id_tenants', 'usage_records'),
                ('fk_calls_tenant_id_tenants', 'calls'))


def upgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    if op.get_bind().dialect.name == 'postgresql':
        for name, table in _TENANT_KEYS:
            op.drop_constraint(name, table, type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, table in _TENANT_KEYS:
            op.create_foreign_key(name, table, 'tenants', ['tenant_id'], ['id'])
    for name, table, column in _INDEXES:
        op.create_index(name, table, [column], unique=False)
