"""Health, metrics and the manual clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from commcredits.adapters.clock import ManualClock
from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.dates import check_in_span
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid
from commcredits.entrypoints.api.deps import caller, runtime
from commcredits.entrypoints.api.schemas import ClockIn
from commcredits.services import jobs

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    with runtime(request).db.uow() as uow:
        uow.conn.exec_driver_sql("SELECT 1")
        now = uow.now
    return {"status": "ok", "now": now.isoformat()}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    from commcredits.entrypoints.metrics import bus_metrics
    return PlainTextResponse(generate_latest() + bus_metrics(runtime(request).db),
                             media_type=CONTENT_TYPE_LATEST)


def _manual_clock(request: Request) -> ManualClock:
    clock = runtime(request).db.clock
    if not isinstance(clock, ManualClock):
        raise DomainError("not_found", "the manual clock is off (COMMCREDITS_MANUAL_CLOCK=1)",
                          ErrorKind.NOT_FOUND)
    return clock


@router.get("/v1/clock")
def get_clock(request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    _manual_clock(request)
    authorize(who, Action.OPERATE)
    with runtime(request).db.uow() as uow:
        return {"now": uow.now.isoformat()}


@router.post("/v1/clock")
def set_clock(body: ClockIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """Test environments: jump to ``now`` (never backwards) and run every job that fell due."""
    clock = _manual_clock(request)
    authorize(who, Action.OPERATE)
    try:
        target = datetime.fromisoformat(body.now.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("validation_error", f"now {body.now!r} is not an ISO 8601 time") from None
    if target.tzinfo is None:
        target = target.replace(tzinfo=UTC)
    target = target.astimezone(UTC)
    check_in_span(target.date(), "now")
    rt = runtime(request)
    with rt.db.uow() as uow:
        if target < uow.now:
            raise conflict("clock_backwards",
                           f"time only moves forward (now is {uow.now.isoformat()})")
        clock.set(uow.conn, target)
        uow.commit()
    ran = jobs.run(rt.jobs())
    return {"now": target.isoformat(), "jobs": ran}
