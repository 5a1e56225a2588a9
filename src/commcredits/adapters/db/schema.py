"""Tables. The migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.types import Amount, UtcDateTime

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

Id = sa.String(40)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_fk() -> sa.Column[str]:
    return sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), nullable=False, index=True)


tenants = sa.Table(
    "tenants", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("commerce", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

wallets = sa.Table(
    "wallets", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("balance", Amount, nullable=False),
    sa.Column("reserved", Amount, nullable=False),
    sa.Column("lot_seq", sa.Integer, nullable=False),
    sa.Column("txn_seq", sa.Integer, nullable=False),
    sa.Column("ar_enabled", sa.Boolean, nullable=False),
    sa.Column("ar_recharge_amount", Amount),
    sa.Column("ar_trigger_amount", Amount),
    sa.Column("ar_payment_method_id", Id),
    sa.Column("ar_status", sa.String(20), nullable=False),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
)

lots = sa.Table(
    "lots", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("remaining", Amount, nullable=False),
    sa.Column("purchased_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("order_id", Id),
    sa.Column("expiring_notified", sa.Boolean, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    sa.UniqueConstraint("tenant_id", "seq", name="uq_lots_tenant_seq"),
)
sa.Index("ix_lots_expires_at_open", lots.c.expires_at)

ledger_transactions = sa.Table(
    "ledger_transactions", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("balance_after", Amount, nullable=False),
    sa.Column("lot_id", Id),
    sa.Column("reference", sa.String(200)),
    sa.UniqueConstraint("tenant_id", "seq", name="uq_ledger_transactions_tenant_seq"),
)

ledger_postings = sa.Table(
    "ledger_postings", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", Id, sa.ForeignKey("ledger_transactions.id"), nullable=False,
              index=True),
    _tenant_fk(),
    sa.Column("debit_account", sa.String(100), nullable=False, index=True),
    sa.Column("credit_account", sa.String(100), nullable=False, index=True),
    sa.Column("amount", Amount, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("debit_account <> credit_account", name="two_accounts"),
)

payment_methods = sa.Table(
    "payment_methods", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("gateway", sa.String(30)),
    sa.Column("token", sa.String(200)),
    sa.Column("brand", sa.String(30)),
    sa.Column("last4", sa.String(4)),
    sa.Column("exp_month", sa.Integer),
    sa.Column("exp_year", sa.Integer),
    sa.Column("agreement_number", sa.String(100)),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_method_id", Id, sa.ForeignKey("payment_methods.id"), nullable=False),
    sa.Column("po_number", sa.String(100)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lot_id", Id),
    sa.Column("gateway_reference", sa.String(200)),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("upn", sa.String(320), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("usage_location", sa.String(2), nullable=False),
    sa.Column("phone_number", sa.String(20)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant_id", "upn", name="uq_users_tenant_upn"),
)

license_assignments = sa.Table(
    "license_assignments", metadata,
    sa.Column("user_id", Id, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("sku", sa.String(30), primary_key=True),
    _tenant_fk(),
    sa.Column("assigned_at", UtcDateTime, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("sku", sa.String(30), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
)

numbers = sa.Table(
    "numbers", metadata,
    sa.Column("number", sa.String(20), primary_key=True),
    _tenant_fk(),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

billing_contacts = sa.Table(
    "billing_contacts", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
)

admins = sa.Table(
    "admins", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id")),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("scope", sa.String(60), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_body", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),  # "" = no billing contact
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("dedupe", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime),
    sa.UniqueConstraint("tenant_id", "dedupe", "recipient", name="uq_notifications_dedupe"),
)
sa.Index("ix_notifications_due", notifications.c.status, notifications.c.next_attempt_at)

clock = sa.Table(
    "clock", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("now", UtcDateTime, nullable=False),
)
