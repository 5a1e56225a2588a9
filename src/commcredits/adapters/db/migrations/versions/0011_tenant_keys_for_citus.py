"""tenant_id in every key of a tenant's tables, so Citus can distribute them by tenant

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

On PostgreSQL every table with a NOT NULL ``tenant_id`` gets it in its primary key and in
every unique and foreign key (``adapters/db/citus.py`` prints the distribution plan). The id
stays the first column of each key, so the lookups by id alone keep using the index.

SQLite cannot autoincrement a composite primary key (``ledger_postings.id``) and gains
nothing from the change, so its keys stay as they were: the application never relies on the
difference (the services check global uniqueness of numbers, SIP domains and admin emails).
"""
from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# table -> (old primary key, new primary key)
PRIMARY_KEYS: dict[str, tuple[list[str], list[str]]] = {
    'lots': (['id'], ['id', 'tenant_id']),
    'ledger_transactions': (['id'], ['id', 'tenant_id']),
    'ledger_postings': (['id'], ['id', 'tenant_id']),
    'payment_methods': (['id'], ['id', 'tenant_id']),
    'orders': (['id'], ['id', 'tenant_id']),
    'users': (['id'], ['id', 'tenant_id']),
    'license_assignments': (['user_id', 'sku'], ['user_id', 'sku', 'tenant_id']),
    'numbers': (['number'], ['number', 'tenant_id']),
    'admins': (['id'], ['id', 'tenant_id']),
    'notifications': (['id'], ['id', 'tenant_id']),
    'calls': (['call_id'], ['call_id', 'tenant_id']),
    'switch_cuts': (['id'], ['id', 'tenant_id']),
    'sip_domains': (['domain'], ['domain', 'tenant_id']),
    'usage_records': (['id'], ['id', 'tenant_id']),
    'messages': (['message_id'], ['message_id', 'tenant_id']),
    'recharges': (['id'], ['id', 'tenant_id']),
    'payment_attempts': (['id'], ['id', 'tenant_id']),
}

# (table, old name, old columns, new name, new columns)
UNIQUES = [
    ('admins', 'uq_admins_email', ['email'], 'uq_admins_email_tenant', ['email', 'tenant_id']),
    ('switch_cuts', 'uq_switch_cuts_call_id', ['call_id'],
     'uq_switch_cuts_call_id_tenant', ['call_id', 'tenant_id']),
]

# (table, old name, old local cols, referred table, old remote cols, new name, new local, new remote)
FOREIGN_KEYS = [
    ('ledger_postings', 'fk_ledger_postings_transaction_id_ledger_transactions',
     ['transaction_id'], 'ledger_transactions', ['id'],
     'fk_ledger_postings_transaction_ledger_transactions',
     ['transaction_id', 'tenant_id'], ['id', 'tenant_id']),
    ('orders', 'fk_orders_payment_method_id_payment_methods',
     ['payment_method_id'], 'payment_methods', ['id'],
     'fk_orders_payment_method_payment_methods',
     ['payment_method_id', 'tenant_id'], ['id', 'tenant_id']),
    ('license_assignments', 'fk_license_assignments_user_id_users',
     ['user_id'], 'users', ['id'],
     'fk_license_assignments_user_users', ['user_id', 'tenant_id'], ['id', 'tenant_id']),
]


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    if not _postgres():
        return
    for table, old_name, *_ in FOREIGN_KEYS:
        op.drop_constraint(old_name, table, type_='foreignkey')
    for table, (_old_pk, new_pk) in PRIMARY_KEYS.items():
        op.drop_constraint(f'pk_{table}', table, type_='primary')
        op.create_primary_key(f'pk_{table}', table, new_pk)
    for table, old_name, _old_cols, new_name, new_cols in UNIQUES:
        op.drop_constraint(old_name, table, type_='unique')
        op.create_unique_constraint(new_name, table, new_cols)
    for table, _old, _ol, referred, _orr, new_name, new_local, new_remote in FOREIGN_KEYS:
        op.create_foreign_key(new_name, table, referred, new_local, new_remote)


def downgrade() -> None:
    if _postgres():
        for table, _old, _ol, _r, _orr, new_name, *_ in FOREIGN_KEYS:
            op.drop_constraint(new_name, table, type_='foreignkey')
        for table, (old_pk, _new_pk) in PRIMARY_KEYS.items():
            op.drop_constraint(f'pk_{table}', table, type_='primary')
            op.create_primary_key(f'pk_{table}', table, old_pk)
        for table, old_name, old_cols, new_name, _new_cols in UNIQUES:
            op.drop_constraint(new_name, table, type_='unique')
            op.create_unique_constraint(old_name, table, old_cols)
        for table, old_name, old_local, referred, old_remote, *_ in FOREIGN_KEYS:
            op.create_foreign_key(old_name, table, referred, old_local, old_remote)
