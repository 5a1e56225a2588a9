"""Prometheus metrics about the business, next to the HTTP ones in the app: what the switch
was told and what was charged. Labels never carry tenant or user ids
(unbounded cardinality); per-tenant figures are in the reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database

CALL_DECISIONS = Counter("commcredits_call_decisions_total",
                         "Call authorizations by decision, funding or block reason",
                         ["decision", "detail"])
CALLS_SETTLED = Counter("commcredits_calls_settled_total", "Calls settled, by funding",
                        ["funding"])
CHARGED = Counter("commcredits_charged_minor_units_total",
                  "Money charged to credits and overage, in minor units of the tenant currency",
                  ["currency", "funding"])
SMS_DECISIONS = Counter("commcredits_sms_decisions_total", "SMS by decision",
                        ["decision", "detail"])
UNCOLLECTED = Counter("commcredits_uncollected_minor_units_total",
                      "Usage that happened but credits could not pay (recorded as uncollected), "
                      "in minor units of the tenant currency", ["currency"])


def count_uncollected(result: dict[str, str]) -> None:
    """Count a settled call's ``uncollected`` amount (a call /end or a rated CDR)."""
    from decimal import Decimal

    from commcredits.domain.money import places
    minor = Decimal(result.get("uncollected") or 0).scaleb(places(result["currency"]))
    if minor:
        UNCOLLECTED.labels(result["currency"]).inc(int(minor))


JOB_FAILURES = Counter("commcredits_job_failures_total",
                       "Background job failures: a row skipped (scope=row) or a whole job "
                       "abandoned (scope=job); the log line names the row", ["job", "scope"])


BATCH_SIZE = Histogram("commcredits_charging_batch_requests",
                       "Requests decided per charging batch (one transaction, one commit)",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 2048))
BATCH_SECONDS = Histogram("commcredits_charging_batch_seconds",
                          "Time from reading a charging batch to its commit",
                          buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5))


def batch_done(size: int, seconds: float) -> None:
    """``ChargingEngine.on_batch``: one committed batch."""
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)


def job_failed(job: str, row: str | None, exc: BaseException) -> None:
    """``JobContext.failed`` for the service: count it in /metrics, then log it."""
    from commcredits.services.jobs import log_failure
    JOB_FAILURES.labels(job, "job" if row is None else "row").inc()
    log_failure(job, row, exc)


REPLICA_FALLBACKS = Counter("commcredits_replica_fallbacks_total",
                            "Report reads served by the primary because the read replica "
                            "(COMMCREDITS_DB_REPLICA) did not answer")


def replica_fallback(_exc: BaseException) -> None:
    REPLICA_FALLBACKS.inc()


def bus_metrics(db: Database) -> bytes:
    """The CDR ingest consumers and the events outbox, read from the database at each scrape
    (the ingest runs in processes of its own, which record their progress there after every
    batch): cumulative outcomes, the lag each last saw, when, and events not yet published."""
    import sqlalchemy as sa
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from commcredits.adapters.db.repositories.bus import COUNTS
    try:
        with db.uow(readonly=True) as uow:
            repo = uow.bus
            consumers = repo.ingest_status()
            unpublished = repo.unpublished()
    except sa.exc.DBAPIError:  # the database is away: the process metrics still answer
        return b""
    labels = ["stream", "durable"]
    done = CounterMetricFamily("commcredits_ingest_cdrs",
                               "CDR messages handled by `ingest nats`, by outcome "
                               "(recorded after each batch's commit)", labels=[*labels, "outcome"])
    pending = GaugeMetricFamily("commcredits_ingest_pending",
                                "Messages in the stream not yet delivered to the consumer "
                                "(its lag), as of its last batch", labels=labels)
    acking = GaugeMetricFamily("commcredits_ingest_ack_pending",
                               "Messages delivered to the consumer and not yet acknowledged",
                               labels=labels)
    seen = GaugeMetricFamily("commcredits_ingest_updated_timestamp_seconds",
                             "When the consumer last reported (Unix time)", labels=labels)
    for row in consumers:
        key = [row.stream, row.durable]
        for outcome in COUNTS:
            done.add_metric([*key, outcome], getattr(row, outcome))
        pending.add_metric(key, row.pending)
        acking.add_metric(key, row.ack_pending)
        seen.add_metric(key, row.updated_at.timestamp())
    events = GaugeMetricFamily("commcredits_events_unpublished",
                               "Domain events in the outbox not yet published to JetStream",
                               value=unpublished)

    class _Snapshot:
        def collect(self) -> list[Any]:
            return [done, pending, acking, seen, events]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())  # type: ignore[arg-type]
    return generate_latest(registry)
