"""The audit log (global admins and the operator) and operator admins (the operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import invalid
from commcredits.entrypoints.api.deps import caller, read, runtime, write
from commcredits.entrypoints.api.schemas import OperatorAdminIn
from commcredits.services import audit, operator_admins

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/tenants/{tid}/audit", response_model=None, responses={200: {
    "description": "`{entries: [...]}`, or with `format=csv` the whole log as CSV",
    "content": {"application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}}}}})
def audit_log(tid: str, request: Request,
              limit: str = Query("100", description="1 to 1000 entries", examples=["100"],
                                 json_schema_extra={"pattern": r"^(1000|[1-9][0-9]{0,2})$"}),
              before_id: str = Query("", description="an entry id: the entries before it",
                                     examples=["42"],
                                     json_schema_extra={"pattern": r"^([1-9][0-9]{0,17})?$"}),
              format: str = Query("json", json_schema_extra={"enum": ["json", "csv"]}),
              who: Principal = Depends(caller)) -> Any:
    """Admin actions in this tenant, newest first: who, role, when, what, before → after.
    ``before_id`` pages on; ``format=csv`` downloads the whole log (oldest first)."""
    authorize(who, Action.ADMINS, tid)
    fmt = format.strip().lower()
    if fmt == "csv":
        with runtime(request).db.uow(readonly=True) as uow:
            lines = list(audit.csv_lines(uow, tid))
        return StreamingResponse(iter(lines), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="audit-{tid}.csv"'})
    if fmt != "json":
        raise invalid("validation_error", "format must be json or csv")
    return read(request, lambda uow: {"entries": audit.entries(uow, tid, limit,
                                                                before_id or None)})


@router.post("/operator-admins", status_code=201)
def add_operator_admin(body: OperatorAdminIn, request: Request,
                       who: Principal = Depends(caller)) -> JSONResponse:
    """A person who signs in to the operator console (``/operator/login``)."""
    authorize(who, Action.OPERATE)
    return write(request, who, lambda uow, _: operator_admins.add(
        uow, str(body.email), body.password), body, 201)
