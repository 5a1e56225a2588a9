"""Prometheus metrics about the business, next to the HTTP ones in the app: what the switch
was told and what was charged. Labels never carry tenant or user ids
(unbounded cardinality); per-tenant figures are in the reports."""

from __future__ import annotations

from prometheus_client import Counter

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
