"""Settings from the environment (``COMMCREDITS_*``)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from commcredits.domain.call_clock import SilentCharge


def data_dir() -> Path:
    """Where the default database lives, whatever the current folder:
    ``$XDG_DATA_HOME/commcredits``, else ``~/.local/share/commcredits``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser().resolve() / "commcredits"


def default_db() -> str:
    return f"sqlite:///{data_dir() / 'commcredits.sqlite3'}"


DEFAULT_SECRET = "change-me-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMCREDITS_", extra="ignore")

    db: str = Field(default_factory=default_db)  # one place, whatever the current folder
    db_replica: str | None = None  # a PostgreSQL read replica for report and export reads
    smtp_url: str | None = None
    smtp_from: str = "commcredits@localhost"
    payment_gateway: str = "test"  # or recording:<file> (tests: a statement of charges)
    gateway_delay_ms: int = 0  # simulated latency of the recording gateway
    # the Stripe gateway (payment_gateway=stripe): keys from the Stripe dashboard
    stripe_secret_key: str | None = None  # sk_live_… / sk_test_… (server side only)
    stripe_publishable_key: str | None = None  # pk_…: the console's Stripe.js card element
    stripe_webhook_secret: str | None = None  # whsec_…: verifies POST /v1/webhooks/stripe
    stripe_api_base: str | None = None  # tests: a local fake of Stripe's API
    stripe_js_url: str = "https://js.stripe.com/v3/"  # tests: a local fake of Stripe.js
    stripe_timeout_s: float = 20.0  # no answer by then: the attempt stays pending
    batch_hold_ms: int = 0  # fault tests: each charging batch waits this long before its commit
    manual_clock: bool = False
    min_order: Decimal = Decimal(50)
    jobs_interval_s: int = 30
    grant_slice_s: int = 300  # time granted per authorization/interim step
    call_grace_s: int = 60  # a silent call is settled at its grant after this much more
    call_idle_s: int = 4 * 3600  # an unlimited silent call is settled after this long
    auth_ttl_s: int = 120  # an authorization never answered nor heard from lapses after this
    silent_charge: SilentCharge = SilentCharge.REPORTED  # or "granted": the whole grant
    switch_cut_url: str | None = None  # where to POST {call_id, tenant_id, reason} to cut
    switch_cut_token: str | None = None  # sent as "Authorization: Bearer <token>"
    nats_url: str | None = None  # NATS with JetStream: domain events are published there
    nats_events_stream: str = "COMMCREDITS_EVENTS"  # created when missing
    nats_events_prefix: str = "commcredits.events"  # subjects <prefix>.<tenant>.<kind>
    max_recharges_per_day: int = 5
    secret_key: str = DEFAULT_SECRET  # signs console session cookies; serve refuses the default
    log_json: bool = False
    max_body_bytes: int = 8 * 1024 * 1024  # larger request bodies answer 413
    max_order: Decimal = Decimal(100_000)  # largest order or auto-recharge, in the currency
    keep_alive_s: int = 5  # idle keep-alive connections are closed after this
    limit_concurrency: int = 1000  # more requests being answered at once answer 503
    access_log: bool = False  # a log line per HTTP request (metrics count them anyway)
    max_connections_per_client: int = 256  # open connections one address may hold (per worker)
    request_timeout_s: int = 30  # a request (headers and body) must arrive within this
    # reverse proxies whose X-Forwarded-For / -Proto are believed: comma-separated IPs or
    # CIDRs (e.g. "10.0.0.5,10.1.0.0/16"); none by default, so a client cannot pose as others
    trusted_proxies: str = ""
    # background jobs: lots (or rows) per transaction, and the most time one may take
    jobs_chunk: int = 500
    jobs_chunk_s: float = 0.5
