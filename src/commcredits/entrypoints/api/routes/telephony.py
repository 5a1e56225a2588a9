"""Telephony (role ``switch``): call decisions, interim updates, call end, SMS."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from fastapi import Request as Request_
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from commcredits.charging.requests import Kind, Request, scope
from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.money import places
from commcredits.entrypoints import metrics
from commcredits.entrypoints.api.deps import caller, push_cuts, runtime
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
from commcredits.services import cdrs, cuts, switching

router = APIRouter(prefix="/v1", tags=["telephony"])


def _tx(rt: Runtime, work: Any) -> Any:
    """Run ``work`` in a transaction; then push any cut it requested, right away (the
    ``cuts`` job retries what fails here)."""
    with rt.db.uow() as uow:
        result = work(uow)
        uow.commit()
        cut_ids = sorted(uow.cuts_requested)
    push_cuts(rt, cut_ids)
    return result


def _resolved(rt: Runtime, who: Principal, tenant_id: str | None, call_type: str,
              frm: str, to: str, sip_domain: str | None) -> str:
    """The call's tenant: as sent, or found from a SIP domain or the tenant's numbers."""
    authorize(who, Action.TELEPHONY)
    if tenant_id is None:
        with rt.db.uow(readonly=True) as uow:
            tenant_id = switching.resolve_tenant(uow, call_type, frm, to, sip_domain)
    scope(who, tenant_id)
    return tenant_id


@router.post("/calls")
def authorize_call(body: CallIn, request: Request_, who: Principal = Depends(caller)) -> Any:
    """May this call go ahead, who pays, and for how long (``max_duration_s`` absent means
    unlimited; talk time from the answer). ``final`` says no more time will be granted;
    ``validity_s`` when to send the next interim; ``auth_ttl_s`` how long the authorization
    waits for the answer. A refusal carries the SIP response to send (``sip_code``,
    ``sip_reason``). Repeating a ``call_id`` returns its decision."""
    return decide(runtime(request), who, body)


def decide(rt: Runtime, who: Principal, body: CallIn) -> dict[str, Any]:
    """``POST /v1/calls`` past validation: decided by the charging engine."""
    tenant_id = _resolved(rt, who, body.tenant_id, body.call_type, body.from_, body.to,
                          body.sip_domain)
    call = {**body.model_dump(by_alias=True), "tenant_id": tenant_id}
    decision: dict[str, Any] = rt.engine.ask(Request(Kind.AUTHORIZE, call, who=who))
    count_decision(decision)
    return decision


def count_decision(decision: dict[str, Any]) -> None:
    _decisions(decision["decision"], decision.get("funding") or decision.get("reason") or "")\
        .inc()


@functools.cache
def _decisions(decision: str, detail: str) -> Any:
    return metrics.CALL_DECISIONS.labels(decision, detail)  # (looked up once)


@functools.cache
def _settled(funding: str) -> Any:
    return metrics.CALLS_SETTLED.labels(funding)


@functools.cache
def _charged(currency: str, funding: str) -> Any:
    return metrics.CHARGED.labels(currency, funding)


def _answer(request: Request_, who: Principal, call_id: str, body: AnswerIn) -> Any:
    return take_answer(runtime(request), who, call_id, body)


def take_answer(rt: Runtime, who: Principal, call_id: str, body: AnswerIn) -> Any:
    """The call's answer past validation (also the demo's switch, ``entrypoints.demo_usage``)."""
    return rt.engine.ask(Request(Kind.ANSWER, {
        "call_id": call_id, "answered_at": body.answered_at}, who=who))


def _interim(request: Request_, who: Principal, call_id: str, body: InterimIn) -> Any:
    return take_interim(runtime(request), who, call_id, body)


def take_interim(rt: Runtime, who: Principal, call_id: str, body: InterimIn) -> Any:
    """An interim update past validation."""
    return rt.engine.ask(Request(Kind.INTERIM, {
        "call_id": call_id, "elapsed_s": body.elapsed_s, "answered_at": body.answered_at},
        who=who))


def _end(request: Request_, who: Principal, call_id: str, body: CallEndIn) -> JSONResponse:
    return JSONResponse(settle_end(runtime(request), who, call_id, body))


def settle_end(rt: Runtime, who: Principal, call_id: str, body: CallEndIn) -> dict[str, Any]:
    """The call's end past validation: settled by the charging engine."""
    result: dict[str, Any] = rt.engine.ask(Request(Kind.END, {
        "call_id": call_id, "duration_s": body.duration_s, "answered_at": body.answered_at},
        who=who))
    count_settled(result)
    return result


def count_settled(result: dict[str, Any]) -> None:
    _settled(result["funding"]).inc()
    minor = Decimal(result["charge"]).scaleb(places(result["currency"]))
    if minor:
        _charged(result["currency"], result["funding"]).inc(int(minor))
    if result.get("uncollected") not in (None, "0", "0.0", "0.00", "0.000"):
        metrics.count_uncollected(result)


# Any SIP Call-ID works in the body forms; the path forms need it percent-encoded and cannot
# carry a "/".
@router.post("/calls/answer")
def answer_by_id(body: AnswerByIdIn, request: Request_,
                 who: Principal = Depends(caller)) -> Any:
    """The callee answered: billing and the silent-call clock start now (or at
    ``answered_at``). Answers like ``interim``. Repeating it changes nothing."""
    return _answer(request, who, body.call_id, body)


@router.post("/calls/interim")
def interim_by_id(body: InterimByIdIn, request: Request_,
                  who: Principal = Depends(caller)) -> Any:
    """``interim`` with the call id in the body."""
    return _interim(request, who, body.call_id, body)


@router.post("/calls/end")
def end_by_id(body: CallEndByIdIn, request: Request_,
              who: Principal = Depends(caller)) -> JSONResponse:
    """``end`` with the call id in the body."""
    return _end(request, who, body.call_id, body)


@router.post("/calls/cut")
def cut(body: CutIn, request: Request_, who: Principal = Depends(caller)) -> Any:
    """Stop a call now (operator: any call; a tenant's global admin: its own). The call's
    next interim answers ``continue: false`` and the switch webhook is told at once."""
    if who.tenant_id is None:
        authorize(who, Action.OPERATE)
    else:
        authorize(who, Action.ADMINS, who.tenant_id)
    return _tx(runtime(request), lambda uow: cuts.cut_call(uow, body.call_id, body.reason,
                                                           who.tenant_id))


@router.get("/switch-cuts")
def list_cuts(request: Request_, tenant_id: str | None = None,
              who: Principal = Depends(caller)) -> Any:
    """The latest cuts pushed to switches (newest first) and whether they were delivered."""
    authorize(who, Action.OPERATE)
    with runtime(request).db.uow(readonly=True) as uow:
        return jsonable_encoder([cuts.cut_view(r) for r in uow.switching.cuts(tenant_id)])


@router.post("/calls/{call_id}/answer")
def answer(call_id: str, request: Request_, body: AnswerIn | None = None,
           who: Principal = Depends(caller)) -> Any:
    """The callee answered (see ``POST /v1/calls/answer``)."""
    return _answer(request, who, call_id, body or AnswerIn())


@router.post("/calls/{call_id}/interim")
def interim(call_id: str, body: InterimIn, request: Request_,
            who: Principal = Depends(caller)) -> Any:
    """Report the talk time so far; more time is reserved while funds last. Answers
    ``continue``, ``max_duration_s`` (total talk allowed), ``final`` and ``validity_s``."""
    return _interim(request, who, call_id, body)


@router.post("/calls/{call_id}/end")
def end(call_id: str, body: CallEndIn, request: Request_,
        who: Principal = Depends(caller)) -> JSONResponse:
    """Settle the exact charge (FIFO across lots) and free the rest. Idempotent; after the
    service settled a silent call, corrects it to the real duration."""
    return _end(request, who, call_id, body)


@router.post("/cdrs")
def rate_cdrs(body: CdrsIn, request: Request_, who: Principal = Depends(caller)) -> Any:
    """Rate calls a switch let through while the service was unreachable: the same
    idempotent rating as ``commcredits cdrs import``, a result per CDR. Fields of a CDR
    that nothing reads are ignored and named in ``unknown_fields``."""
    authorize(who, Action.TELEPHONY)
    rt = runtime(request)
    results: list[dict[str, Any] | None] = []
    todo: list[cdrs.Cdr] = []
    unknown = cdrs.unknown_columns(name for row in body.cdrs for name in row.model_extra or ())
    for line, row in enumerate(body.cdrs, start=1):
        try:
            tenant_id = _resolved(rt, who, row.tenant_id, row.call_type, row.from_,
                                  row.to, row.sip_domain)
        except DomainError as e:
            results.append({"call_id": row.call_id, "status": "error", "error": e.code,
                            "message": e.message})
            continue
        todo.append(cdrs.Cdr(line, {**row.model_dump(by_alias=True, exclude={
            "start_time", "duration_s", "sip_domain", *(row.model_extra or ())}),
            "tenant_id": tenant_id}, row.start_time, row.duration_s))
        results.append(None)
    rated = iter(cdrs.rate_all(rt.db, todo, who=who))  # one batch: one transaction
    for i, item in enumerate(results):
        if item is None:
            results[i] = _cdr_view(next(rated))
    return {"results": results, "unknown_fields": unknown}


def _cdr_view(out: cdrs.CdrResult) -> dict[str, Any]:
    item: dict[str, Any] = {"call_id": out.call_id, "status": out.status}
    if out.charge is not None:
        item["charge"] = out.charge
    if out.status == "error":
        code, _, message = (out.detail or "").partition(": ")
        item.update(error=code, message=message)
    elif out.detail:
        item["detail"] = out.detail
    return item


@router.post("/sms")
def send_sms(body: SmsIn, request: Request_, who: Principal = Depends(caller)) -> Any:
    """Charge an SMS per segment (outbound); inbound is free. Idempotent by ``message_id``."""
    return take_sms(runtime(request), who, body)


def take_sms(rt: Runtime, who: Principal, body: SmsIn) -> Any:
    """An SMS past validation: decided by the charging engine."""
    result = rt.engine.ask(Request(Kind.SMS, body.model_dump(by_alias=True), who=who))
    count_sms(result)
    return result


def count_sms(result: dict[str, Any]) -> None:
    metrics.SMS_DECISIONS.labels(result["decision"], result.get("funding")
                                 or result.get("reason") or "").inc()
