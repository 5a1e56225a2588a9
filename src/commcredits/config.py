"""Settings from the environment (``COMMCREDITS_*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic_settings import BaseSettings, SettingsConfigDict

from commcredits.domain.call_clock import SilentCharge

DEFAULT_DB = "sqlite:///var/commcredits.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMCREDITS_", extra="ignore")

    db: str = DEFAULT_DB
    smtp_url: str | None = None
    smtp_from: str = "commcredits@localhost"
    payment_gateway: str = "test"
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
    max_recharges_per_day: int = 5
    secret_key: str = "change-me-in-production"  # signs console session cookies
    log_json: bool = False
