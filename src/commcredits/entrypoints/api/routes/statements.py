"""Charge explanations and monthly statements (API.md §Explanations, corrections and
statements). Every tenant role and the operator may read them; another tenant's key gets 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import invalid
from commcredits.entrypoints.api.deps import caller, read
from commcredits.services import explanations, statements

router = APIRouter(prefix="/v1/tenants/{tid}", tags=["statements"])

_EXPLAINED = (
    "As stored when it settled (never recomputed with today's deck): `route` (who pays: "
    "`paid_by` user, conferencing or toll_free; the number, destination, scope, capability), "
    "`charge` (the price: "
    "`charge` = Σ `lots[].amount` + `overage` + `uncollected`), `collected` (what was taken: "
    "credits + overage, the usage report's Charge), the rate line with its `deck_version`, "
    "the seconds and how rounding made them (`billed_s`, `rounding`), the minute pool before "
    "and after, each lot drawn from in FIFO order with its expiry, the ledger transaction "
    "ids and any re-rating `corrections`. 404 `not_found` until the call has settled.")


_EXAMPLE = {
    "call_id": "c-1", "usage_id": "use_0123456789abcdef01234567", "call_type": "user_out",
    "funding": "credits", "currency": "USD", "charge": "0.10", "collected": "0.10",
    "connection_fee": "0.00", "route": {"paid_by": "user", "upn": "adele@contoso.com",
                                        "destination_number": "+12065550123",
                                        "destination": "United States", "scope": "Domestic",
                                        "capability": "MCOPSTNPP"},
    "duration_s": 720, "billed_s": 600,
    "rounding": {"increment_s": 60, "pool_s": 120, "pool_minutes": 2, "credit_s": 300,
                 "credit_billed_s": 300, "overage_s": 300, "overage_billed_s": 300},
    "rate": {"deck_version": 1, "prefix": "1", "destination": "United States",
             "number_type": "any", "per_minute": "0.01", "connection_fee": "0.00",
             "increment_s": 60},
    "pool": {"pool": "domestic:US:MCOPSTN1", "minutes": 2, "used_before": 5998,
             "used_after": 6000},
    "lots": [{"lot_id": "lot_a", "amount": "0.03", "expires_at": "2031-03-10T12:00:00+00:00"},
             {"lot_id": "lot_b", "amount": "0.02", "expires_at": "2031-03-11T12:00:00+00:00"}],
    "overage": "0.05", "uncollected": "0.00",
    "ledger_transaction_id": "txn_0123456789abcdef01234567",
    "ledger_transaction_ids": ["txn_0123456789abcdef01234567"], "corrections": []}


@router.get("/calls/{call_id}/explanation",
            description=f"Why a call cost what it did. {_EXPLAINED}",
            responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}})
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


_MONTH = Path(description="the calendar month, YYYY-MM (UTC)", examples=["2030-03"],
              pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$")
_FORMAT = Query("json", alias="format", description="json (default), csv or pdf",
                json_schema_extra={"enum": list(statements.FORMATS)})
_MEDIA = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


@router.get(
    "/statements/{month}",
    description="The tenant's credits over one calendar month (UTC), from the ledger: "
                "`opening_balance` + `purchases` + `auto_recharges` - `usage.total` + "
                "`corrections` - `expired` = `closing_balance`, to the cent; a month's "
                "closing is the next month's opening, each the balance at that instant. "
                "`usage` by category (domestic, international, toll_free, conferencing, "
                "sms); `final` is false while the month is not over. Also `tenant_name`, "
                "`transactions` (how many ledger transactions the month holds), "
                "`fundings` (each order and auto-recharge: card, or Enterprise Agreement "
                "with its PO number) and "
                "`overage` (post-usage overage of the month, invoiced separately: not part "
                "of the balance). `format=csv` one row per line; `format=pdf` the same as a "
                "PDF page (Unicode: any tenant name prints).",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}},
                                 "text/csv": {"schema": {"type": "string"}},
                                 "application/pdf": {"schema": {"type": "string",
                                                                "format": "binary"}}}}})
def monthly_statement(tid: str, request: Request, month: str = _MONTH,
                      fmt_: str = _FORMAT, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)
    if fmt_ not in statements.FORMATS:
        raise invalid("validation_error", "format must be one of json, csv, pdf")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return statements.statement(uow, tid, month)
    view = read(request, work)
    if fmt_ == "json":
        return view
    body = statements.to_csv(view).encode() if fmt_ == "csv" else statements.to_pdf(view)
    name = statements.file_name(view, fmt_)
    return Response(body, media_type=_MEDIA[fmt_],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
