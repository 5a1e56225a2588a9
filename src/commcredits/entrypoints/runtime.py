"""Wiring: settings → database, clock, payment gateway, mailer. Shared by API, CLI and jobs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from commcredits.adapters.clock import ManualClock, SystemClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.replica import Reads
from commcredits.adapters.db.uow import Database
from commcredits.adapters.mailer import SmtpMailer
from commcredits.adapters.nats_bus import NatsEventBus
from commcredits.adapters.payments import gateway_named
from commcredits.adapters.switch_push import WebhookSwitchNotifier
from commcredits.config import Settings
from commcredits.services.jobs import JobContext
from commcredits.services.ports import EventBus, Mailer, PaymentGateway, SwitchNotifier

if TYPE_CHECKING:
    from commcredits.charging.engine import ChargingEngine


@dataclass
class Runtime:
    settings: Settings
    db: Database
    gateway: PaymentGateway
    mailer: Mailer | None
    switch: SwitchNotifier | None = None  # where cuts are pushed (None: nowhere)
    reads: Reads | None = None  # report and export reads (COMMCREDITS_DB_REPLICA)
    bus: EventBus | None = None  # where domain events are published (None: nowhere)
    _engine: ChargingEngine | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        clock = ManualClock() if settings.manual_clock else SystemClock()
        db = Database(make_engine(settings.db), clock)
        if isinstance(clock, ManualClock):
            with db.engine.begin() as conn, contextlib.suppress(sa.exc.DBAPIError):
                clock.ensure(conn)  # before any read-only unit of work needs it
        mailer = SmtpMailer(settings.smtp_url, settings.smtp_from) if settings.smtp_url else None
        switch = WebhookSwitchNotifier(settings.switch_cut_url, settings.switch_cut_token) \
            if settings.switch_cut_url else None
        from commcredits.entrypoints.metrics import replica_fallback
        reads = Reads.connect(db, settings.db_replica, replica_fallback)
        bus = NatsEventBus(settings.nats_url, settings.nats_events_stream,
                           f"{settings.nats_events_prefix}.>") if settings.nats_url else None
        stripe = {"secret_key": settings.stripe_secret_key or "",
                  "webhook_secret": settings.stripe_webhook_secret,
                  "api_base": settings.stripe_api_base,
                  "timeout_s": settings.stripe_timeout_s} \
            if settings.payment_gateway == "stripe" else {}
        return cls(settings, db, gateway_named(settings.payment_gateway,
                                               settings.gateway_delay_ms / 1000, **stripe),
                   mailer, switch, reads, bus)

    @property
    def engine(self) -> ChargingEngine:
        """This process's charging engine (``commcredits.charging``): every call, SMS and
        CDR is decided through it."""
        if self._engine is None:
            from commcredits.charging.engine import ChargingEngine
            from commcredits.charging.requests import Settings as EngineSettings
            s = self.settings
            from commcredits.entrypoints.metrics import batch_done
            self._engine = ChargingEngine(
                self.db, EngineSettings(s.grant_slice_s, s.auth_ttl_s, s.batch_hold_ms / 1000),
                self._after_commit, batch_done)
        return self._engine

    def _after_commit(self, recharge_tenants: list[str], cut_ids: list[str]) -> None:
        """Run the auto-recharges a batch started and push the cuts it requested, right
        away (the ``recharge`` and ``cuts`` jobs retry whatever fails here)."""
        from commcredits.entrypoints.api.deps import push_cuts, run_recharges
        run_recharges(self, recharge_tenants)
        push_cuts(self, cut_ids)

    def report_reads(self) -> Reads:
        """Where report and export reads go: the replica when configured, else the primary."""
        if self.reads is None:
            self.reads = Reads(self.db)
        return self.reads

    def jobs(self, stopping: Callable[[], bool] | None = None) -> JobContext:
        """What the jobs need; ``stopping``: set when the process is shutting down."""
        s = self.settings
        from commcredits.entrypoints.metrics import job_failed
        return JobContext(self.db, self.mailer, self.gateway, s.max_recharges_per_day,
                          s.call_grace_s, s.call_idle_s, auth_ttl_s=s.auth_ttl_s,
                          silent_charge=s.silent_charge, switch=self.switch, failed=job_failed,
                          bus=self.bus, events_prefix=s.nats_events_prefix,
                          chunk=s.jobs_chunk, chunk_s=s.jobs_chunk_s,
                          stopping=stopping or (lambda: False))
