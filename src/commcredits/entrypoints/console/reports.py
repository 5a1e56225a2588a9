"""Console usage reports (``/console/reports``, ``/console/reports/export``) and minute pools
(``/console/pools``). They reuse ``services.reports`` and ``services.pools`` as the REST API
does. The page shows the first :data:`REPORT_PAGE_ROWS` rows; the CSV and Excel downloads
have them all. A bad period or month answers **422** with the page itself, its error shown
next to the period form, so it can be fixed in place; a bad download link answers the 422
error page.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from commcredits.adapters.db.repositories.usage_totals import UsageTotals, usage_totals
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError, ErrorKind, invalid
from commcredits.domain.pools import month_of
from commcredits.entrypoints.console.common import locale_for
from commcredits.entrypoints.console.pages import (
    NO_STORE,
    ROLE_LABELS,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
    templates,
)
from commcredits.entrypoints.downloads import report_file, source_headers
from commcredits.services import explanations, pools
from commcredits.services import reports as rep
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])

REPORT_KINDS = {"pstn": rep.PSTN, "sms": rep.SMS}
REPORT_LABELS = {"pstn": "PSTN usage", "sms": "SMS usage"}
REPORT_PAGE_ROWS = 500  # rows shown on the page; the downloads have them all
# The columns the page shows unless asked for all (``cols=all``); the downloads have them all.
KEY_COLUMNS = {
    "pstn": ("Start Time", "Call ID", "UPN", "Call Type", "Destination Dialed",
             "Destination Number", "Domestic/International", "Duration Seconds",
             "Connection Fee", "Charge", "Original Charge", "Currency"),
    "sms": ("Sent Time", "Message ID", "UPN", "Message Type", "Destination",
            "Destination Number", "Domestic/International", "Segments", "Charge", "Currency"),
}
EXPORT_FORMATS = ("csv", "xlsx")
TIME_COLUMNS = {"Start Time", "End Time", "Sent Time"}  # shown as everywhere in the console


def _when_s(value: str) -> str:
    """``2030-03-10T12:01:30Z`` → ``2030-03-10 12:01:30 UTC`` (the console's way, to the
    second for usage)."""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return value

# -- usage ------------------------------------------------------------------------------------
_FROM = Query("", alias="from")


def _qs(**params: object) -> str:
    """``kind=pstn&days=7``: the non-empty parameters, URL-encoded (``from_`` → ``from``)."""
    return urlencode({k.rstrip("_"): str(v) for k, v in params.items()
                      if v is not None and v != ""})


def _report_kind(kind: str) -> rep.Report:
    report = REPORT_KINDS.get(kind.strip().lower() or "pstn")
    if report is None:
        raise invalid("validation_error", f"kind must be pstn or sms (got {kind[:20]!r})")
    return report


def _period_query(days: str, from_: str, to: str, period: rep.Period | None) -> dict[str, str]:
    """The period part of the page's links: ``days`` for the last 7/28 days, else the range."""
    if period is None:  # a bad period: keep what was asked
        return {"days": days, "from_": from_, "to": to}
    if from_.strip() or to.strip():
        return {"from_": period.first.isoformat(), "to": period.last.isoformat()}
    return {"days": str(period.days)}


@router.get("/console/reports", response_class=HTMLResponse)
def reports(request: Request, kind: str = "pstn", days: str = "", from_: str = _FROM,
            to: str = "", cols: str = "", user: str = "", explain: str = "") -> Response:
    """PSTN or SMS usage for the last 7 or 28 days or a custom range, with totals and CSV/
    Excel links. The table has the key columns, or every column of the export with
    ``cols=all``; ``user`` (a UPN) keeps one user's rows, totals and downloads. Each row's
    call (message) id links to the page with ``explain=<id>``: a panel says why it cost
    what it did (``services.explanations``, as the API's explanation)."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    kind_key = kind.strip().lower() or "pstn"
    error: DomainError | None = None
    period: rep.Period | None = None
    shown: list[rep.Row] = []
    why: dict[str, Any] | None = None
    total = 0
    sums: UsageTotals | None = None
    upn = user.strip()[:320]
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow() as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            try:
                report = _report_kind(kind_key)
                period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
            except DomainError as e:
                if kind_key not in REPORT_KINDS:
                    kind_key, report = "pstn", rep.PSTN
                error = e
            if period is not None:
                sums = usage_totals(uow.conn, sess.tenant_id, report.kind, period.start,
                                    period.end, upn or None)
                total = sums.records
                rows = rep.rows(uow, report, sess.tenant_id, period, upn or None,
                                extras=True)
                try:
                    shown = list(islice(rows, REPORT_PAGE_ROWS))
                finally:
                    rows.close()
            why = _explanation(uow, sess.tenant_id, kind_key, explain.strip()[:200])
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    pq = _period_query(days, from_, to, period)
    all_cols = cols.strip().lower() == "all"
    keep = {**({"cols": "all"} if all_cols else {}), **({"user": upn} if upn else {})}
    names = report.columns if all_cols else KEY_COLUMNS[kind_key]
    where = [report.json_columns.index(n) for n in names]
    numeric = report.money | report.integers | {"Uncollected", "Original Charge"}
    ref = report.json_columns.index("Message ID" if report is rep.SMS else "Call ID")
    link = {**pq, **keep}
    return templates.TemplateResponse(request, "reports.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "kind": kind_key, "kinds": [(k, REPORT_LABELS[k], "?" + _qs(kind=k, **pq, **keep))
                                    for k in REPORT_KINDS],
        "columns": names, "numeric": [n in numeric for n in names],
        "rows": [[_when_s(row[i]) if names[k] in TIME_COLUMNS else row[i]
                  for k, i in enumerate(where)] for row in shown],
        "ref_col": where.index(ref) if ref in where else None,
        "explain_links": ["?" + _qs(kind=kind_key, **link, explain=row[ref]) + "#explanation"
                          for row in shown],
        "explained": row_ref(shown, ref, explain.strip()), "why": why,
        "close_explain": "?" + _qs(kind=kind_key, **link),
        "all_cols": all_cols, "n_columns": len(report.columns),
        "cols_toggle": "?" + _qs(kind=kind_key, **pq, cols="" if all_cols else "all",
                                 user=upn),
        "user": upn, "sums": sums, "cur": tenant.currency, "loc": locale_for(tenant.country),
        "clear_user": "?" + _qs(kind=kind_key, **pq, cols="all" if all_cols else ""),
        "period": period, "error": error, "total": total,
        "mode": "custom" if from_.strip() or to.strip() else (days.strip()
                                                              or str(rep.DEFAULT_DAYS)),
        "last_days": [(n, "?" + _qs(kind=kind_key, days=n, **keep)) for n in rep.DAYS_CHOICES],
        "form": {"from": period.first.isoformat() if period else from_.strip(),
                 "to": period.last.isoformat() if period else to.strip()},
        "downloads": [(f, "/console/reports/export?"
                       + _qs(kind=kind_key, format=f, **pq, user=upn))
                      for f in EXPORT_FORMATS] if period else [],
    }, status_code=_status(error) if error else 200, headers=NO_STORE)


def row_ref(rows: list[rep.Row], ref: int, wanted: str) -> int | None:
    """Which shown row is being explained (highlighted), if any."""
    return next((n for n, row in enumerate(rows) if wanted and row[ref] == wanted), None)


def _explanation(uow: Any, tenant_id: str, kind: str, ref: str) -> dict[str, Any] | None:
    """The panel's content: the explanation, or the reason there is none."""
    if not ref:
        return None
    try:
        found = (explanations.explain_sms if kind == "sms" else explanations.explain_call)(
            uow, tenant_id, ref)
    except DomainError as e:
        return {"error": e.message, "ref": ref}
    return {"e": found, "ref": ref}


@router.get("/console/reports/export")
def reports_export(request: Request, kind: str = "pstn", format: str = "csv",
                   days: str = "", from_: str = _FROM, to: str = "",
                   user: str = "") -> Response:
    """The whole report as a CSV (streamed) or Excel (.xlsx) attachment; ``user`` (a UPN)
    keeps that user's rows, as on the page."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    tid = sess.tenant_id
    try:  # everything is checked before streaming starts: no error can follow the headers
        authorize(sess.principal, Action.READ, tid)
        report = _report_kind(kind)
        fmt_ = format.strip().lower()
        if fmt_ not in EXPORT_FORMATS:
            raise invalid("validation_error", f"format must be csv or xlsx (got {format[:20]!r})")
        db = _runtime(request).db
        with db.uow() as uow:
            rep.check(uow, tid)
            period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Cannot export", e.message)
    source = _runtime(request).report_reads().pick()  # COMMCREDITS_DB_REPLICA, else db
    rows = rep.stream(source.db, report, tid, period, upn=user.strip()[:320] or None)
    name = rep.file_name(report, tid, period, fmt_)
    return report_file(report, rows, fmt_, name, headers={**NO_STORE,
                                                          **source_headers(source)})


def _shift_month(month: str, delta: int) -> str:
    n = int(month[:4]) * 12 + int(month[5:]) - 1 + delta
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _percent(used: int, total: int) -> str:
    """Share of the pool used, ``"0.1"``, ``"25"``, ``"100"`` (one decimal place at most)."""
    if total <= 0:
        return "100" if used > 0 else "0"
    share = min(100.0, round(used * 100 / total, 1))
    return f"{share:g}"


@router.get("/console/pools", response_class=HTMLResponse)
def minute_pools(request: Request, month: str = "") -> Response:
    """The minute pools the tenant's licenses give it: minutes total, used and left."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    error: DomainError | None = None
    rows: list[dict[str, Any]] = []
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow() as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            this_month = month_of(uow.now)
            try:
                rows = pools.report(uow, sess.tenant_id, month.strip() or None)
            except DomainError as e:
                if e.kind is not ErrorKind.INVALID:
                    raise
                error = e
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    shown = month.strip() or this_month
    for r in rows:
        r["percent"] = _percent(r["minutes_used"], r["minutes_total"])
    nav = {} if error else {"previous": _shift_month(shown, -1), "next": _shift_month(shown, 1)}
    return templates.TemplateResponse(request, "pools.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "pools": rows, "month": shown, "this_month": this_month, "nav": nav, "error": error,
    }, status_code=_status(error) if error else 200, headers=NO_STORE)

