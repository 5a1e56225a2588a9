"""Charge explanations and monthly statements (API.md §Explanations, corrections and
statements). Every tenant role and the operator may read them; another tenant's key gets 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import Action, Principal, authorize
from commcredits.entrypoints.api.deps import caller, read
from commcredits.services import explanations

router = APIRouter(prefix="/v1/tenants/{tid}", tags=["statements"])

_EXPLAINED = (
    "As stored when it settled (never recomputed with today's deck): `charge` (the price: "
    "`charge` = Σ `lots[].amount` + `overage` + `uncollected`), `collected` (what was taken: "
    "credits + overage, the usage report's Charge), the rate line with its `deck_version`, "
    "the seconds and how rounding made them (`billed_s`, `rounding`), the minute pool before "
    "and after, each lot drawn from in FIFO order with its expiry, the ledger transaction "
    "ids and any re-rating `corrections`. 404 `not_found` until the call has settled.")


@router.get("/calls/{call_id}/explanation",
            description=f"Why a call cost what it did. {_EXPLAINED}")
def call_explanation(tid: str, call_id: str, request: Request,
                     who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return explanations.explain_call(uow, tid, call_id)
    return read(request, work)


@router.get("/sms/{message_id}/explanation",
            description="Why an SMS cost what it did: the same fields as a call's explanation, "
                        "`segments` in place of the seconds.")
def sms_explanation(tid: str, message_id: str, request: Request,
                    who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return explanations.explain_sms(uow, tid, message_id)
    return read(request, work)
