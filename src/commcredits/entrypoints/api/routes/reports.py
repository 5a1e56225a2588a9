"""Usage reports (API.md §Reports): PSTN and SMS usage as JSON, CSV or Excel, and the
minute-pools report. Every tenant role and the operator may read them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response, StreamingResponse

from commcredits.domain.access import Action, Principal, authorize
from commcredits.entrypoints.api.deps import caller, runtime
from commcredits.entrypoints.downloads import report_file, source_headers
from commcredits.services import pools, report_zip
from commcredits.services import report_formats as formats
from commcredits.services import reports as rep

router = APIRouter(prefix="/v1/tenants/{tid}/reports", tags=["reports"])

_FROM = Query(None, alias="from", description="first day, YYYY-MM-DD (UTC, inclusive)",
              examples=["2030-03-01"])
_TO = Query(None, description="last day, YYYY-MM-DD (UTC, inclusive); default today",
            examples=["2030-03-31"])
_DAYS = Query(None, description="7 or 28: that many days ending on `to` (default today); "
              "not together with `from`. Nothing given: the last 28 days.", examples=["7"],
              json_schema_extra={"enum": ["7", "28"]})
_USER = Query(None, description="only this user's rows (a UPN, any case); downloads and "
              "totals alike", examples=["adele@contoso.com"])
_FORMAT = Query("json", alias="format", description="json (default), csv, xlsx, or zip (the "
                "admin center's export: `PSTN.calls.<UTC date>.csv` + `parameters.json`)",
                examples=["csv"], json_schema_extra={"enum": list(rep.FORMATS)})

_SOURCE_HEADERS = {
    "X-Data-As-Of": {"description": "how fresh the data is (ISO 8601 UTC): the read replica's "
                     "last replayed transaction, or the primary's time", "schema": {
                         "type": "string", "format": "date-time"}},
    "X-Data-Source": {"description": "`replica` (COMMCREDITS_DB_REPLICA) or `primary`",
                      "schema": {"type": "string", "enum": ["replica", "primary"]}},
    "Warning": {"description": "present when a configured read replica did not answer and "
                "the primary served the report", "schema": {"type": "string"}},
}


_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": _SOURCE_HEADERS,
        "description": "With `format=json` a JSON array of objects whose keys are the report's "
                       "columns in order (money as decimal strings, times ISO 8601 UTC); "
                       "PSTN rows then add `Uncollected`, what credits could not pay for "
                       "the call. `format=csv` an RFC 4180 CSV with a header row; "
                       "`format=xlsx` an Excel workbook; both hold exactly the report's "
                       "columns.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
            formats.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            report_zip.ZIP_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _user(user: str | None) -> str | None:
    return user.strip()[:320] or None if user else None


def _export(request: Request, who: Principal, tid: str, report: rep.Report, from_: str | None,
            to: str | None, days: str | None, fmt_: str | None,
            user: str | None) -> Response:
    """Check everything first (no error can be sent once streaming has begun), then stream."""
    authorize(who, Action.READ, tid)
    rt = runtime(request)
    with rt.db.uow(readonly=True) as uow:
        rep.check(uow, tid)
        period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
        now = uow.now
    kind = rep.parse_format(fmt_)
    source = rt.report_reads().pick()
    headers = source_headers(source)
    upn = _user(user)
    if kind == "json":
        rows = rep.stream(source.db, report, tid, period, upn=upn, extras=True)
        return StreamingResponse(formats.json_chunks(report, rows, extras=True),
                                 media_type="application/json", headers=headers)
    rows = rep.stream(source.db, report, tid, period, upn=upn)
    parameters = report_zip.export_parameters(report, tid, period, now)
    parameters["dataAsOf"] = headers["X-Data-As-Of"]
    return report_file(report, rows, kind, rep.file_name(report, tid, period, kind),
                       headers=headers, zip_parameters=parameters, exported_at=now)


@router.get("/pstn-usage", responses=_EXPORT_RESPONSES, response_class=Response)
def pstn_usage(tid: str, request: Request, from_: str | None = _FROM, to: str | None = _TO,
               days: str | None = _DAYS, fmt_: str | None = _FORMAT,
               user: str | None = _USER, who: Principal = Depends(caller)) -> Response:
    """PSTN usage, one row per call that started in the period, oldest first, with the
    columns UsageId, Call ID, Conference ID, User Location, AAD ObjectId, UPN, User Display
    Name, Caller ID, Call Type, Number Type, Domestic/International, Destination Dialed,
    Destination Number, Start Time, End Time, Duration Seconds, Connection Fee, Charge,
    Currency, Capability. JSON rows add `Uncollected` (what credits could not pay; files
    keep the 20 columns: see `.../pstn-usage/totals`). Periods: `days=7|28`, or
    `from`/`to` (at most one year apart). Bad periods answer 422 `validation_error`."""
    return _export(request, who, tid, rep.PSTN, from_, to, days, fmt_, user)


@router.get("/sms-usage", responses=_EXPORT_RESPONSES, response_class=Response)
def sms_usage(tid: str, request: Request, from_: str | None = _FROM, to: str | None = _TO,
              days: str | None = _DAYS, fmt_: str | None = _FORMAT,
              user: str | None = _USER, who: Principal = Depends(caller)) -> Response:
    """SMS usage, one row per message sent or received in the period, oldest first, with the
    columns UsageId, Message ID, User Location, AAD ObjectId, UPN, User Display Name, Sender
    ID, Message Type (`sms_out`/`sms_in`), Number Type, Domestic/International, Destination,
    Destination Number, Sent Time, Segments, Charge, Currency, Capability. Periods as for
    the PSTN report."""
    return _export(request, who, tid, rep.SMS, from_, to, days, fmt_, user)


def _totals(request: Request, who: Principal, tid: str, report: rep.Report,
            from_: str | None, to: str | None, days: str | None, user: str | None) -> Any:
    authorize(who, Action.READ, tid)

    source = runtime(request).report_reads().pick()
    with source.db.uow(readonly=True) as uow:
        rep.check(uow, tid)
        period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
        body = jsonable_encoder(rep.totals(uow, report, tid, period, _user(user)))
    return JSONResponse(body, headers=source_headers(source))


@router.get("/pstn-usage/totals", responses={200: {"description": "The totals",
                                                   "headers": _SOURCE_HEADERS}})
def pstn_totals(tid: str, request: Request, from_: str | None = _FROM, to: str | None = _TO,
                days: str | None = _DAYS, user: str | None = _USER,
                who: Principal = Depends(caller)) -> Any:
    """The PSTN report's totals for the period (and user): `{from, to, user, currency,
    records, duration_s, charge, uncollected}`. `uncollected` is the price of calls that
    happened but that credits could not pay: recorded, never lost."""
    return _totals(request, who, tid, rep.PSTN, from_, to, days, user)


@router.get("/sms-usage/totals", responses={200: {"description": "The totals",
                                                  "headers": _SOURCE_HEADERS}})
def sms_totals(tid: str, request: Request, from_: str | None = _FROM, to: str | None = _TO,
               days: str | None = _DAYS, user: str | None = _USER,
               who: Principal = Depends(caller)) -> Any:
    """The SMS report's totals: `{from, to, user, currency, records, segments, charge,
    uncollected}`."""
    return _totals(request, who, tid, rep.SMS, from_, to, days, user)


@router.get("/minute-pools", responses={200: {"description": "The pools",
                                              "headers": _SOURCE_HEADERS}})
def minute_pools(tid: str, request: Request,
                 month: str | None = Query(None, description="YYYY-MM (UTC); default this "
                                           "month", examples=["2030-03"]),
                 who: Principal = Depends(caller)) -> Any:
    """Every minute pool the tenant's licenses give it: `[{pool, name, country, plan, month,
    minutes_total, minutes_used, minutes_left}]`."""
    authorize(who, Action.READ, tid)
    source = runtime(request).report_reads().pick()
    with source.db.uow(readonly=True) as uow:
        body = jsonable_encoder(pools.report(uow, tid, month.strip() if month else None))
    return JSONResponse(body, headers=source_headers(source))
