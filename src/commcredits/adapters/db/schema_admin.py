"""Tables of who pays and who acts: card payment attempts, the audit log, operator admins and
console sessions. Part of :mod:`schema` (import them from there): they share its metadata."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import BigId, Id, metadata
from commcredits.adapters.db.base import tenant_fk as _tenant_fk
from commcredits.adapters.db.types import Amount, UtcDateTime

# -- payments (issue #8) -------------------------------------------------------------------------
# Every card charge is recorded here *before* the gateway is called, so none can be lost:
# pending → succeeded (lot created) | failed (refused) | charged (money taken but no lot could
# be created: reported by `payments reconcile` for an operator).
payment_attempts = sa.Table(
    "payment_attempts", metadata,
    sa.Column("id", Id, primary_key=True),  # also the gateway's idempotency key
    _tenant_fk(primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),  # order | auto_recharge
    sa.Column("amount", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_method_id", Id, nullable=False),
    sa.Column("po_number", sa.String(100)),
    sa.Column("client_key", sa.String(200)),  # the client's Idempotency-Key, per tenant
    sa.Column("request_hash", sa.String(64)),
    sa.Column("recharge_id", Id),
    sa.Column("auto_recharge", sa.Text),  # JSON: settings an order applies once funded
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("gateway_reference", sa.String(200)),
    sa.Column("error_code", sa.String(60)),
    sa.Column("order_id", Id),
    sa.Column("refund_reference", sa.String(200)),  # status refunded: the gateway's refund
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.UniqueConstraint("tenant_id", "client_key", name="uq_payment_attempts_client_key"),
)
sa.Index("ix_payment_attempts_open", payment_attempts.c.status, payment_attempts.c.updated_at)

# -- console: audit log and operator admins (issue #10) -------------------------------------------
audit_log = sa.Table(  # append-only: database triggers refuse UPDATE and DELETE
    "audit_log", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id),  # None: an operator-wide action
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor_id", Id, nullable=False),
    sa.Column("actor_role", sa.String(30), nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),  # email, key id or "system"
    sa.Column("via", sa.String(10), nullable=False),  # api | console | cli | job
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("before", sa.Text),  # JSON
    sa.Column("after", sa.Text),  # JSON
)
sa.Index("ix_audit_log_tenant_id_id", audit_log.c.tenant_id, audit_log.c.id)

operator_admins = sa.Table(
    "operator_admins", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Console sign-ins, server-side so that sign-out (and "sign out everywhere") ends them at once.
# The cookie carries a random token; only its SHA-256 is stored. No foreign key: removing an
# admin must not wait for its old sessions (they stop working with it).
console_sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256(token)
    sa.Column("admin_id", Id, nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("client", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    # tenant: a tenant admin (``admins``); operator: an operator admin (``operator_admins``)
    sa.Column("realm", sa.String(10), nullable=False, server_default="tenant"),
)

# Failed console sign-ins, one row per throttle key (``pair:``, ``client:``, ``account:``)
# and failure, shared by every process and instance; rows older than the window are deleted.
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)
sa.Index("ix_login_failures_key_at", login_failures.c.key, login_failures.c.at)
sa.Index("ix_login_failures_at", login_failures.c.at)

# the month-close statement e-mail: one row per (tenant, month), claimed by the job that
# sends it (migration 0019), so every instance sends it once between them
statement_mailings = sa.Table(
    "statement_mailings", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
)
