"""Telephony (role ``switch``): call decisions, interim updates, call end, SMS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.money import places
from commcredits.entrypoints import metrics
from commcredits.entrypoints.api.deps import caller, run_recharges, runtime
from commcredits.entrypoints.api.schemas import CallEndIn, CallIn, InterimIn, SmsIn
from commcredits.services import charging, sms

router = APIRouter(prefix="/v1", tags=["telephony"])


def _tx(request: Request, work: Any, stored: Any = None) -> Any:
    """Run ``work`` in a transaction; then run any auto-recharge it started, right away (the
    ``recharge`` job retries whatever fails here).

    Calls and messages are idempotent by their id. If a retransmission of the same id raced
    this one and committed first, this attempt's insert conflicts: everything it did is
    rolled back and ``stored`` (a read of the first attempt's answer) answers instead.
    """
    db = runtime(request).db
    try:
        with db.uow() as uow:
            result = work(uow)
            uow.commit()
            started = sorted(uow.recharges_requested)
    except sa.exc.IntegrityError:
        if stored is None:
            raise
        with db.uow(readonly=True) as uow:
            first = stored(uow)
        if first is None:  # not the id race: a real conflict
            raise
        return first
    run_recharges(request, started)
    return result


def _tenant_scope(who: Principal, tenant_id: str) -> None:
    authorize(who, Action.TELEPHONY)
    if who.tenant_id is not None and who.tenant_id != tenant_id:
        authorize(who, Action.TELEPHONY, tenant_id)


@router.post("/calls")
def authorize_call(body: CallIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """May this call go ahead, who pays, and for how long (``max_duration_s`` absent means
    unlimited). Repeating a ``call_id`` returns its decision."""
    _tenant_scope(who, body.tenant_id)
    slice_s = runtime(request).settings.grant_slice_s
    decision = _tx(request, lambda uow: charging.authorize_call(
        uow, slice_s, body.model_dump(by_alias=True)),
        stored=lambda uow: charging.stored_decision(uow, body.call_id, body.tenant_id))
    metrics.CALL_DECISIONS.labels(decision["decision"], decision.get("funding")
                                  or decision.get("reason") or "").inc()
    return decision


@router.post("/calls/{call_id}/interim")
def interim(call_id: str, body: InterimIn, request: Request,
            who: Principal = Depends(caller)) -> Any:
    """Report the elapsed time; more time is reserved while funds last."""
    authorize(who, Action.TELEPHONY)
    slice_s = runtime(request).settings.grant_slice_s
    return _tx(request, lambda uow: charging.interim(uow, slice_s, call_id, body.elapsed_s))


@router.post("/calls/{call_id}/end")
def end(call_id: str, body: CallEndIn, request: Request,
        who: Principal = Depends(caller)) -> JSONResponse:
    """Settle the exact charge (FIFO across lots) and free the rest. Idempotent."""
    authorize(who, Action.TELEPHONY)
    result = _tx(request, lambda uow: charging.end_call(uow, call_id, body.duration_s))
    metrics.CALLS_SETTLED.labels(result["funding"]).inc()
    minor = Decimal(result["charge"]).scaleb(places(result["currency"]))
    if minor:
        metrics.CHARGED.labels(result["currency"], result["funding"]).inc(int(minor))
    metrics.count_uncollected(result)
    return JSONResponse(result)


@router.post("/sms")
def send_sms(body: SmsIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """Charge an SMS per segment (outbound); inbound is free. Idempotent by ``message_id``."""
    _tenant_scope(who, body.tenant_id)
    result = _tx(request, lambda uow: sms.handle(uow, body.model_dump(by_alias=True)),
                 stored=lambda uow: sms.stored_result(uow, body.message_id, body.tenant_id))
    metrics.SMS_DECISIONS.labels(result["decision"], result.get("funding")
                                 or result.get("reason") or "").inc()
    return result
