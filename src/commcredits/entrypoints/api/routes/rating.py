"""Rate decks (operator) and rate lookup."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import invalid
from commcredits.entrypoints.api.deps import caller, read, runtime
from commcredits.entrypoints.api.schemas import CURRENCIES
from commcredits.services import rating

router = APIRouter(prefix="/v1", tags=["rating"])
_CURRENCY = Path(description="ISO 4217 code", json_schema_extra=CURRENCIES)

MAX_DECK_BYTES = 64 * 1024 * 1024


@router.put("/rate-decks/{currency}", openapi_extra={"requestBody": {"content": {"text/csv": {
    "schema": {"type": "string"}}}, "required": True}})
async def put_rate_deck(request: Request, currency: str = _CURRENCY,
                        who: Principal = Depends(caller)) -> JSONResponse:
    """Replace the deck of ``currency`` with a CSV (header
    ``prefix,destination,number_type,per_minute,connection_fee,increment_s``). Any bad line
    refuses the whole file: 422 with every line number in ``error.details``."""
    authorize(who, Action.OPERATE)
    raw = await request.body()
    if len(raw) > MAX_DECK_BYTES:
        raise invalid("validation_error", "the deck is larger than 64 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("validation_error", "the deck must be UTF-8 text") from None
    def work() -> dict[str, Any]:
        with runtime(request).db.uow() as uow:
            result = rating.import_deck(uow, currency, text)
            uow.commit()
            return result
    return JSONResponse(await run_in_threadpool(work))


@router.get("/rates/{currency}/lookup")
def lookup(number: str, request: Request, currency: str = _CURRENCY,
           number_type: str | None = None, who: Principal = Depends(caller)) -> Any:
    """The rate a number gets: longest prefix for its type (or ``any``)."""
    return read(request, lambda uow: rating.lookup(uow, currency, number, number_type))

