"""Settings from the environment (``COMMCREDITS_*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite:///var/commcredits.sqlite3"
DEFAULT_SECRET = "change-me-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMCREDITS_", extra="ignore")

    db: str = DEFAULT_DB
    smtp_url: str | None = None
    smtp_from: str = "commcredits@localhost"
    payment_gateway: str = "test"  # or recording:<file> (tests: a statement of charges)
    gateway_delay_ms: int = 0  # simulated latency of the recording gateway
    manual_clock: bool = False
    min_order: Decimal = Decimal(50)
    jobs_interval_s: int = 30
    grant_slice_s: int = 300  # time granted per authorization/interim step
    call_grace_s: int = 60  # a silent call is settled at its grant after this much more
    call_idle_s: int = 4 * 3600  # an unlimited silent call is settled after this long
    max_recharges_per_day: int = 5
    secret_key: str = DEFAULT_SECRET  # signs console session cookies; serve refuses the default
    log_json: bool = False
    max_body_bytes: int = 8 * 1024 * 1024  # larger request bodies answer 413
    max_order: Decimal = Decimal(100_000)  # largest order or auto-recharge, in the currency
    keep_alive_s: int = 5  # idle keep-alive connections are closed after this
    limit_concurrency: int = 1000  # more simultaneous connections answer 503 at once
    request_timeout_s: int = 30  # a request (headers and body) must arrive within this
