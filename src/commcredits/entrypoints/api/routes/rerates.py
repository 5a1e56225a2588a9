"""Re-rating (operator): a dry run of a period priced with a deck, and applying it.

``POST /v1/rerates`` computes a run (``services.rerate.compute``) in one transaction (with an
``Idempotency-Key`` a repeat answers the same run); with ``apply: true`` the run is then
applied tenant by tenant (``services.rerate.apply``), which is itself idempotent: a tenant a
run has corrected is never corrected by it again.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field, StrictBool, StringConstraints

from commcredits.domain.access import Action, Principal, authorize
from commcredits.entrypoints.api.deps import caller, push_cuts, read, run_recharges, runtime, write
from commcredits.entrypoints.api.schemas import Body
from commcredits.services import rerate
from commcredits.services.audit import Actor

router = APIRouter(prefix="/v1", tags=["rerates"])

Day = Annotated[str, StringConstraints(
    max_length=10, pattern=r"^(20[0-9]{2}|21[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    Field(examples=["2030-03-01"])]


class RerateIn(Body):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=40,
                                                pattern=r"^[!-.0-~]+$")] | None = None
    from_: Day = Field(alias="from", description="first day (UTC), included")
    to: Day = Field(description="last day (UTC), included")
    deck: Annotated[str, StringConstraints(max_length=13,
                                           pattern=r"^[A-Z]{3}@[0-9]{1,9}$")] | None = Field(
        None, description="CURRENCY@VERSION (the current version of that deck); none: each "
                          "currency's current deck")
    apply: StrictBool = False

    def fingerprint(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), sort_keys=True)


def _scope(body: RerateIn) -> rerate.Scope:
    return rerate.parse({"tenant_id": body.tenant_id, "from": body.from_, "to": body.to,
                         "deck": body.deck})


@router.post("/rerates")
def create_rerate(body: RerateIn, request: Request,
                  who: Principal = Depends(caller)) -> JSONResponse:
    """Price every settled call that started in the period again with the deck and return
    the diff: per call the old and new price and the delta (new - old; negative: money back),
    per tenant and currency the totals and what the corrections would do to the balance
    (``balance_delta``), the forfeitures and the uncollected amounts. With ``apply: true``
    the correcting ledger entries are posted (a settled entry is never changed)."""
    authorize(who, Action.OPERATE)
    scope = _scope(body)
    answer = write(request, who, lambda uow, _: rerate.compute(uow, scope, who.id), body)
    if not body.apply:
        return answer
    run_id = json.loads(bytes(answer.body))["id"]
    return _apply(request, who, run_id)


def _apply(request: Request, who: Principal, run_id: str) -> JSONResponse:
    rt = runtime(request)

    def after(recharges: list[str], cuts: list[str]) -> None:
        run_recharges(rt, recharges)  # what a correction started runs now, as for a charge
        push_cuts(rt, cuts)
    return JSONResponse(rerate.apply(rt.db, run_id, who.id, Actor.of(who, "api"), after))


@router.get("/rerates")
def list_rerates(request: Request, who: Principal = Depends(caller)) -> Any:
    """The latest runs, newest first (without their per-call diff)."""
    authorize(who, Action.OPERATE)
    return read(request, lambda uow: [{k: v for k, v in rerate.view(r).items() if k != "calls"}
                                      for r in uow.rerates.runs()])


@router.get("/rerates/{run_id}", response_model=None, responses={200: {
    "description": "the run, or with `format=csv` its per-call diff as CSV",
    "content": {"application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}}}}})
def get_rerate(run_id: str, request: Request, who: Principal = Depends(caller),
               format: str = Query("json", pattern="^(json|csv)$")) -> Any:
    """A run as computed (``format=csv``: the per-call diff as CSV)."""
    authorize(who, Action.OPERATE)
    run = read(request, lambda uow: rerate.get(uow, run_id))
    if format == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows(rerate.csv_rows(run))
        return Response(buf.getvalue(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="rerate-{run_id}.csv"'})
    return run


@router.post("/rerates/{run_id}/apply")
def apply_rerate(run_id: str, request: Request,
                 who: Principal = Depends(caller)) -> JSONResponse:
    """Apply a dry run as it was computed: per tenant one transaction under its wallet lock;
    a tenant the run corrected already answers ``already_applied`` and changes nothing."""
    authorize(who, Action.OPERATE)
    return _apply(request, who, run_id)
