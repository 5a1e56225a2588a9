"""Telephony (role ``switch``): call decisions, interim updates, call end, SMS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.money import places
from commcredits.entrypoints import metrics
from commcredits.entrypoints.api.deps import caller, push_cuts, run_recharges, runtime
from commcredits.entrypoints.api.schemas import (
    AnswerByIdIn,
    AnswerIn,
    CallEndByIdIn,
    CallEndIn,
    CallIn,
    CdrsIn,
    CutIn,
    InterimByIdIn,
    InterimIn,
    SmsIn,
)
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import cdrs, charging, cuts, sms, switching

router = APIRouter(prefix="/v1", tags=["telephony"])


def _tx(rt: Runtime, work: Any, stored: Any = None) -> Any:
    """Run ``work`` in a transaction; then run any auto-recharge it started, and push any
    cut it requested, right away (the ``recharge`` and ``cuts`` jobs retry what fails here).

    Calls and messages are idempotent by their id. If a retransmission of the same id raced
    this one and committed first, this attempt's insert conflicts: everything it did is
    rolled back and ``stored`` (a read of the first attempt's answer) answers instead.
    """
    db = rt.db
    try:
        with db.uow() as uow:
            result = work(uow)
            uow.commit()
            started = sorted(uow.recharges_requested)
            cut_ids = sorted(uow.cuts_requested)
    except sa.exc.IntegrityError:
        if stored is None:
            raise
        with db.uow(readonly=True) as uow:
            first = stored(uow)
        if first is None:  # not the id race: a real conflict
            raise
        return first
    run_recharges(rt, started)
    push_cuts(rt, cut_ids)
    return result


def _tenant_scope(who: Principal, tenant_id: str) -> None:
    authorize(who, Action.TELEPHONY)
    if who.tenant_id is not None and who.tenant_id != tenant_id:
        authorize(who, Action.TELEPHONY, tenant_id)


def _resolved(rt: Runtime, who: Principal, tenant_id: str | None, call_type: str,
              frm: str, to: str, sip_domain: str | None) -> str:
    """The call's tenant: as sent, or found from a SIP domain or the tenant's numbers."""
    authorize(who, Action.TELEPHONY)
    if tenant_id is None:
        with rt.db.uow(readonly=True) as uow:
            tenant_id = switching.resolve_tenant(uow, call_type, frm, to, sip_domain)
    _tenant_scope(who, tenant_id)
    return tenant_id


@router.post("/calls")
def authorize_call(body: CallIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """May this call go ahead, who pays, and for how long (``max_duration_s`` absent means
    unlimited; talk time from the answer). ``final`` says no more time will be granted;
    ``validity_s`` when to send the next interim; ``auth_ttl_s`` how long the authorization
    waits for the answer. A refusal carries the SIP response to send (``sip_code``,
    ``sip_reason``). Repeating a ``call_id`` returns its decision."""
    return decide(runtime(request), who, body)


def decide(rt: Runtime, who: Principal, body: CallIn) -> dict[str, Any]:
    """``POST /v1/calls`` past validation (also the lean route's, ``fastpath``)."""
    tenant_id = _resolved(rt, who, body.tenant_id, body.call_type, body.from_, body.to,
                          body.sip_domain)
    settings = rt.settings
    slice_s = settings.grant_slice_s
    call = {**body.model_dump(by_alias=True), "tenant_id": tenant_id}
    decision: dict[str, Any] = _tx(
        rt, lambda uow: charging.authorize_call(uow, slice_s, call),
        stored=lambda uow: charging.stored_decision(uow, body.call_id, tenant_id, slice_s))
    metrics.CALL_DECISIONS.labels(decision["decision"], decision.get("funding")
                                  or decision.get("reason") or "").inc()
    if decision["decision"] == "allowed":
        decision = {**decision, "tenant_id": tenant_id, "auth_ttl_s": settings.auth_ttl_s}
    return decision


def _answer(request: Request, who: Principal, call_id: str, body: AnswerIn) -> Any:
    authorize(who, Action.TELEPHONY)
    rt = runtime(request)
    slice_s = rt.settings.grant_slice_s
    return _tx(rt, lambda uow: charging.answer(uow, slice_s, call_id, body.answered_at))


def _interim(request: Request, who: Principal, call_id: str, body: InterimIn) -> Any:
    authorize(who, Action.TELEPHONY)
    rt = runtime(request)
    slice_s = rt.settings.grant_slice_s
    return _tx(rt, lambda uow: charging.interim(uow, slice_s, call_id, body.elapsed_s,
                                                body.answered_at))


def _end(request: Request, who: Principal, call_id: str, body: CallEndIn) -> JSONResponse:
    return JSONResponse(settle_end(runtime(request), who, call_id, body))


def settle_end(rt: Runtime, who: Principal, call_id: str, body: CallEndIn) -> dict[str, Any]:
    """The call's end past validation (also the lean route's, ``fastpath``)."""
    authorize(who, Action.TELEPHONY)
    result: dict[str, Any] = _tx(rt, lambda uow: charging.end_call(
        uow, call_id, body.duration_s, body.answered_at))
    metrics.CALLS_SETTLED.labels(result["funding"]).inc()
    minor = Decimal(result["charge"]).scaleb(places(result["currency"]))
    if minor:
        metrics.CHARGED.labels(result["currency"], result["funding"]).inc(int(minor))
    metrics.count_uncollected(result)
    return result


# Any SIP Call-ID works in the body forms; the path forms need it percent-encoded and cannot
# carry a "/".
@router.post("/calls/answer")
def answer_by_id(body: AnswerByIdIn, request: Request,
                 who: Principal = Depends(caller)) -> Any:
    """The callee answered: billing and the silent-call clock start now (or at
    ``answered_at``). Answers like ``interim``. Repeating it changes nothing."""
    return _answer(request, who, body.call_id, body)


@router.post("/calls/interim")
def interim_by_id(body: InterimByIdIn, request: Request,
                  who: Principal = Depends(caller)) -> Any:
    """``interim`` with the call id in the body."""
    return _interim(request, who, body.call_id, body)


@router.post("/calls/end")
def end_by_id(body: CallEndByIdIn, request: Request,
              who: Principal = Depends(caller)) -> JSONResponse:
    """``end`` with the call id in the body."""
    return _end(request, who, body.call_id, body)


@router.post("/calls/cut")
def cut(body: CutIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """Stop a call now (operator: any call; a tenant's global admin: its own). The call's
    next interim answers ``continue: false`` and the switch webhook is told at once."""
    if who.tenant_id is None:
        authorize(who, Action.OPERATE)
    else:
        authorize(who, Action.ADMINS, who.tenant_id)
    return _tx(runtime(request), lambda uow: cuts.cut_call(uow, body.call_id, body.reason,
                                                           who.tenant_id))


@router.get("/switch-cuts")
def list_cuts(request: Request, tenant_id: str | None = None,
              who: Principal = Depends(caller)) -> Any:
    """The latest cuts pushed to switches (newest first) and whether they were delivered."""
    authorize(who, Action.OPERATE)
    with runtime(request).db.uow(readonly=True) as uow:
        return jsonable_encoder([cuts.cut_view(r) for r in uow.switching.cuts(tenant_id)])


@router.post("/calls/{call_id}/answer")
def answer(call_id: str, request: Request, body: AnswerIn | None = None,
           who: Principal = Depends(caller)) -> Any:
    """The callee answered (see ``POST /v1/calls/answer``)."""
    return _answer(request, who, call_id, body or AnswerIn())


@router.post("/calls/{call_id}/interim")
def interim(call_id: str, body: InterimIn, request: Request,
            who: Principal = Depends(caller)) -> Any:
    """Report the talk time so far; more time is reserved while funds last. Answers
    ``continue``, ``max_duration_s`` (total talk allowed), ``final`` and ``validity_s``."""
    return _interim(request, who, call_id, body)


@router.post("/calls/{call_id}/end")
def end(call_id: str, body: CallEndIn, request: Request,
        who: Principal = Depends(caller)) -> JSONResponse:
    """Settle the exact charge (FIFO across lots) and free the rest. Idempotent; after the
    service settled a silent call, corrects it to the real duration."""
    return _end(request, who, call_id, body)


@router.post("/cdrs")
def rate_cdrs(body: CdrsIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """Rate calls a switch let through while the service was unreachable: the same
    idempotent rating as ``commcredits cdrs import``, a result per CDR."""
    authorize(who, Action.TELEPHONY)
    db_rt = runtime(request)
    db = db_rt.db
    results = []
    for line, row in enumerate(body.cdrs, start=1):
        try:
            tenant_id = _resolved(db_rt, who, row.tenant_id, row.call_type, row.from_,
                                  row.to, row.sip_domain)
        except DomainError as e:
            results.append({"call_id": row.call_id, "status": "error", "error": e.code,
                            "message": e.message})
            continue
        cdr = cdrs.Cdr(line, {**row.model_dump(by_alias=True, exclude={"start_time",
                                                                       "duration_s",
                                                                       "sip_domain"}),
                              "tenant_id": tenant_id}, row.start_time, row.duration_s)
        out = cdrs.rate_one(db, cdr)
        item: dict[str, Any] = {"call_id": out.call_id, "status": out.status}
        if out.charge is not None:
            item["charge"] = out.charge
        if out.status == "error":
            code, _, message = (out.detail or "").partition(": ")
            item.update(error=code, message=message)
        elif out.detail:
            item["detail"] = out.detail
        results.append(item)
    return {"results": results}


@router.post("/sms")
def send_sms(body: SmsIn, request: Request, who: Principal = Depends(caller)) -> Any:
    """Charge an SMS per segment (outbound); inbound is free. Idempotent by ``message_id``."""
    _tenant_scope(who, body.tenant_id)
    result = _tx(runtime(request), lambda uow: sms.handle(uow, body.model_dump(by_alias=True)),
                 stored=lambda uow: sms.stored_result(uow, body.message_id, body.tenant_id))
    metrics.SMS_DECISIONS.labels(result["decision"], result.get("funding")
                                 or result.get("reason") or "").inc()
    return result
