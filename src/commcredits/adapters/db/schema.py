"""Tables. The migrations in ``migrations/versions`` create exactly these.

Ready for Citus (migration 0011): every table with a NOT NULL ``tenant_id`` has it in its
primary key and in every unique and foreign key (id first, so lookups by id keep their
index); ``adapters/db/citus.py`` says how each table is distributed. On SQLite the keys stay
those of 0001-0008 (a composite key cannot autoincrement there); nothing relies on the
difference."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import BigId, Id, metadata
from commcredits.adapters.db.base import tenant_fk as _tenant_fk
from commcredits.adapters.db.types import Amount, UtcDateTime

tenants = sa.Table(
    "tenants", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("commerce", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("allow_premium", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("blocked_prefixes", sa.String(1000), nullable=False, server_default=""),
    sa.Column("user_daily_cap", Amount),  # most credits one user may spend a UTC day
    # nce: usage beyond pools and credits is billed as overage only when turned on
    sa.Column("overage_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("no_rate", sa.String(10), nullable=False, server_default="free"),  # free|block
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
    sa.Column("ar_armed", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("zero_notified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
)

lots = sa.Table(
    "lots", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
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
# a tenant's lots with money left in FIFO order: the expiry job's chunks (migration 0018)
sa.Index("ix_lots_open_fifo", lots.c.tenant_id, lots.c.purchased_at, lots.c.seq,
         postgresql_where=lots.c.remaining > 0, sqlite_where=lots.c.remaining > 0)

ledger_transactions = sa.Table(
    "ledger_transactions", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True, index=False),  # uq_ledger_transactions_tenant_seq covers it
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
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # SQLite: id alone
    sa.Column("transaction_id", Id, nullable=False, index=True),
    # the tenant is its transaction's (the key below), which references tenants (0022)
    _tenant_fk(primary_key=True, references=False),
    sa.Column("debit_account", sa.String(100), nullable=False),
    sa.Column("credit_account", sa.String(100), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("debit_account <> credit_account", name="two_accounts"),
    sa.ForeignKeyConstraint(["transaction_id", "tenant_id"],
                            ["ledger_transactions.id", "ledger_transactions.tenant_id"],
                            name="fk_ledger_postings_transaction_ledger_transactions"),
)

payment_methods = sa.Table(
    "payment_methods", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("gateway", sa.String(30)),
    sa.Column("token", sa.String(200)),
    sa.Column("brand", sa.String(30)),
    sa.Column("last4", sa.String(4)),
    sa.Column("exp_month", sa.Integer),
    sa.Column("exp_year", sa.Integer),
    sa.Column("fingerprint", sa.String(100)),  # the gateway's mark of the number (Stripe)
    sa.Column("agreement_number", sa.String(100)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("removed_at", UtcDateTime),  # removed methods stay for the orders that used them
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_method_id", Id, nullable=False),
    sa.Column("po_number", sa.String(100)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lot_id", Id),
    sa.Column("gateway_reference", sa.String(200)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.ForeignKeyConstraint(["payment_method_id", "tenant_id"],
                            ["payment_methods.id", "payment_methods.tenant_id"],
                            name="fk_orders_payment_method_payment_methods"),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("upn", sa.String(320), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("usage_location", sa.String(2), nullable=False),
    sa.Column("phone_number", sa.String(20)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # the Entra ID (Azure AD) object id: the usage exports' "AAD ObjectId" (migration 0016)
    sa.Column("aad_object_id", sa.String(36)),
    sa.UniqueConstraint("tenant_id", "upn", name="uq_users_tenant_upn"),
)
# UPNs are looked up case-insensitively on every call decision
sa.Index("ix_users_tenant_upn_lower", users.c.tenant_id, sa.func.lower(users.c.upn))
# a Diameter CCR names its user by phone number or SIP URI alone (migration 0021)
sa.Index("ix_users_phone_number", users.c.phone_number)
sa.Index("ix_users_upn_lower", sa.func.lower(users.c.upn))
sa.Index("uq_users_tenant_aad_object_id", users.c.tenant_id, users.c.aad_object_id,
         unique=True)

license_assignments = sa.Table(
    "license_assignments", metadata,
    sa.Column("user_id", Id, primary_key=True),
    sa.Column("sku", sa.String(30), primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("assigned_at", UtcDateTime, nullable=False),
    sa.ForeignKeyConstraint(["user_id", "tenant_id"], ["users.id", "users.tenant_id"],
                            name="fk_license_assignments_user_users"),
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
    sa.Column("number", sa.String(20), primary_key=True),  # one tenant's: services check
    _tenant_fk(primary_key=True),
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
    _tenant_fk(primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),  # one admin's: services check
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("email", "tenant_id", name="uq_admins_email_tenant"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id")),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),  # a revoked key answers 401
    sa.Column("last_used_at", UtcDateTime),  # refreshed at most once a minute
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
    _tenant_fk(primary_key=True),
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

# -- charging (issue #3; the rate decks are in schema_rating) ----------------------------
calls = sa.Table(
    "calls", metadata,
    sa.Column("call_id", sa.String(200), primary_key=True),
    _tenant_fk(primary_key=True, references=False),  # a locked wallet's tenant (0022)
    sa.Column("call_type", sa.String(20), nullable=False),
    sa.Column("from_number", sa.String(40), nullable=False),
    sa.Column("to_number", sa.String(40), nullable=False),
    sa.Column("user_id", Id),
    sa.Column("conference_id", sa.String(200)),
    sa.Column("decision", sa.String(10), nullable=False),
    sa.Column("reason", sa.String(40)),
    sa.Column("route", sa.Text, nullable=False),  # JSON: how it is paid, the rate, the number
    sa.Column("pool", sa.String(60)),
    sa.Column("pool_month", sa.String(7)),
    sa.Column("pool_s", sa.Integer, nullable=False),
    sa.Column("credit_s", sa.Integer, nullable=False),
    sa.Column("credit_reserved", Amount, nullable=False),
    sa.Column("with_fee", sa.Boolean),
    sa.Column("tail", sa.String(10)),
    sa.Column("status", sa.String(10), nullable=False),  # active | ended | blocked
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("elapsed_s", sa.Integer, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("result", sa.Text),
    # the switch's answer event: billing and the silent-call clock run from it
    sa.Column("answered_at", UtcDateTime),
    sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),  # no more time
    sa.Column("cut_reason", sa.String(40)),  # the service asked the switch to end it
    sa.Column("settled_by", sa.String(10)),  # switch | silence | expired
)
sa.Index("ix_calls_active", calls.c.status, calls.c.last_seen_at)

pool_usage = sa.Table(
    "pool_usage", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("pool", sa.String(60), primary_key=True),
    sa.Column("used_minutes", sa.Integer, nullable=False),
    sa.Column("reserved_s", sa.Integer, nullable=False),
    sa.Column("alerted", sa.Integer, nullable=False),  # highest alert threshold sent
    sa.CheckConstraint("reserved_s >= 0", name="reserved_not_negative"),
)

usage_records = sa.Table(
    "usage_records", metadata,
    sa.Column("id", Id, primary_key=True),
    # ix_usage_records_period covers the index; the tenant is a locked wallet's (0022)
    _tenant_fk(primary_key=True, index=False, references=False),
    sa.Column("kind", sa.String(5), nullable=False),  # call | sms
    sa.Column("ref", sa.String(200), nullable=False),  # call id or message id
    sa.Column("conference_id", sa.String(200)),
    sa.Column("user_location", sa.String(2)),
    sa.Column("user_id", Id),
    sa.Column("upn", sa.String(320)),
    sa.Column("display_name", sa.String(200)),
    sa.Column("caller_id", sa.String(40)),
    sa.Column("call_type", sa.String(20), nullable=False),
    sa.Column("number_type", sa.String(20)),
    sa.Column("scope", sa.String(15)),
    sa.Column("destination", sa.String(200)),
    sa.Column("destination_number", sa.String(40)),
    sa.Column("start_time", UtcDateTime, nullable=False),
    sa.Column("end_time", UtcDateTime, nullable=False),
    sa.Column("duration_s", sa.Integer, nullable=False),
    sa.Column("segments", sa.Integer),
    sa.Column("connection_fee", Amount, nullable=False),
    sa.Column("charge", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("capability", sa.String(30), nullable=False),
    sa.Column("funding", sa.String(10), nullable=False),
    sa.Column("included_minutes", sa.Integer, nullable=False),
    sa.Column("credits_charge", Amount, nullable=False),
    sa.Column("overage_charge", Amount, nullable=False),
    sa.Column("uncollected", Amount, nullable=False),
    sa.Column("lots", sa.Text, nullable=False),  # JSON [[lot id, amount], ...]
    sa.Column("detail", sa.Text),  # JSON: what its explanation is made of (migration 0019)
    sa.Column("original_charge", Amount),  # set by the first re-rate that corrects it
    sa.UniqueConstraint("tenant_id", "kind", "ref", name="uq_usage_records_ref"),
)
sa.Index("ix_usage_records_period", usage_records.c.tenant_id, usage_records.c.kind,
         usage_records.c.start_time)

messages = sa.Table(
    "messages", metadata,
    sa.Column("message_id", sa.String(200), primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

recharges = sa.Table(
    "recharges", metadata,
    sa.Column("id", Id, primary_key=True),
    _tenant_fk(primary_key=True),
    sa.Column("status", sa.String(12), nullable=False),  # pending | succeeded | failed | capped
    sa.Column("amount", Amount, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("last_error", sa.String(300)),
    sa.Column("order_id", Id),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
sa.Index("ix_recharges_due", recharges.c.status, recharges.c.next_attempt_at)

# the rest of the tables (payments, audit, operator admins, console sessions, the bus,
# re-rating, the switch's cuts and SIP domains), on the same
# metadata; imported last so that they can use the names above
from commcredits.adapters.db.schema_admin import (  # noqa: E402
    audit_log,
    console_sessions,
    login_failures,
    operator_admins,
    payment_attempts,
    statement_mailings,
)
from commcredits.adapters.db.schema_bus import (  # noqa: E402
    domain_events,
    event_capture,
    ingest_consumers,
)
from commcredits.adapters.db.schema_rating import (  # noqa: E402
    rate_decks,
    rate_rows,
)
from commcredits.adapters.db.schema_rerate import (  # noqa: E402
    rerate_runs,
    rerate_tenants,
    usage_corrections,
)
from commcredits.adapters.db.schema_switching import (  # noqa: E402
    sip_domains,
    switch_cuts,
)

__all__ = [
    "audit_log",
    "console_sessions",
    "domain_events",
    "event_capture",
    "ingest_consumers",
    "login_failures",
    "operator_admins",
    "payment_attempts",
    "rate_decks",
    "rate_rows",
    "rerate_runs",
    "rerate_tenants",
    "sip_domains",
    "statement_mailings",
    "switch_cuts",
    "usage_corrections",
]
