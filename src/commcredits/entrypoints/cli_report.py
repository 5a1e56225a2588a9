"""``commcredits report pstn-usage|sms-usage``: export a usage report to .csv, .xlsx or .zip.

The format follows the extension of ``--out``. The period rules are the API's
(:func:`commcredits.services.reports.parse_period`): ``--from``/``--to`` dates (inclusive,
UTC; ``--to`` defaults to today), or ``--days 7|28``; nothing given means the last 28 days.
The file is written next to its final name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.entrypoints.cli_common import DbOption, _runtime
from commcredits.entrypoints.cli_common import err as _err
from commcredits.entrypoints.cli_common import out as _out

report_app = typer.Typer(help="Usage reports.", no_args_is_help=True)

EXTENSIONS = (".csv", ".xlsx", ".zip")

Tenant = Annotated[str, typer.Option("--tenant", help="tenant id")]
Out = Annotated[Path, typer.Option("--out", dir_okay=False,
                                   help="output file; .csv (RFC 4180), .xlsx (Excel) or .zip "
                                        "(the admin center's export)")]
From = Annotated[str | None, typer.Option("--from", help="first day YYYY-MM-DD (UTC)")]
To = Annotated[str | None, typer.Option("--to", help="last day YYYY-MM-DD (UTC); default "
                                                      "today")]
Days = Annotated[str | None, typer.Option("--days", help="7 or 28 (instead of --from)")]
User = Annotated[str | None, typer.Option("--user", help="only this user's rows (a UPN)")]
Db = DbOption


def _export(name: str, tenant: str, out: Path, from_: str | None, to: str | None,
            days: str | None, db: str | None, user: str | None = None) -> None:
    from commcredits.services import report_formats as formats
    from commcredits.services import report_zip
    from commcredits.services import reports as rep

    ext = out.suffix.lower()
    if ext not in EXTENSIONS:
        _err.print(f"[red]error[/red] --out must end in .csv, .xlsx or .zip (got "
                   f"{out.name!r})")
        raise typer.Exit(2)
    if not out.parent.is_dir():
        _err.print(f"[red]error[/red] the folder {str(out.parent)!r} does not exist")
        raise typer.Exit(2)
    report = rep.REPORTS[name]
    upn = (user or "").strip() or None
    rt: Any = _runtime(db)
    try:
        with rt.db.uow() as uow:
            rep.check(uow, tenant)
            period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
            total = rep.count(uow, report, tenant, period, upn)
            sums = rep.totals(uow, report, tenant, period, upn)
            now = uow.now
    except DomainError as e:
        _err.print(f"[red]error[/red] {e.code}: {e.message}")
        raise typer.Exit(2 if e.kind is ErrorKind.INVALID else 1) from None
    source = rt.report_reads().pick()  # COMMCREDITS_DB_REPLICA, else the primary
    as_of = source.as_of_text
    _err.print(f"data as of {as_of} ({source.name})", highlight=False)

    def write_zip(path: Path, report: rep.Report, rows: Any, progress: Any) -> int:
        parameters = report_zip.export_parameters(report, tenant, period, now)
        parameters["dataAsOf"] = as_of
        return report_zip.write_zip(path, report, rows, parameters, now, progress)
    write = {".csv": formats.write_csv, ".xlsx": formats.write_xlsx, ".zip": write_zip}[ext]
    partial = out.with_name(f".{out.name}.part")
    try:
        with Progress(TextColumn(f"{name} {period.first} to {period.last}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=_err) as bar:
            task = bar.add_task(name, total=total)
            written = write(partial, report,
                            rep.stream(source.db, report, tenant, period, upn=upn),
                            lambda n=1: bar.advance(task, n))
        os.replace(partial, out)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    _out.print(f"wrote {written} rows to {out}", highlight=False, soft_wrap=True)
    # the files keep the contract's columns; what credits could not pay is said here
    _out.print(f"total charged {sums['charge']} {sums['currency']}, uncollected "
               f"{sums['uncollected']} {sums['currency']}", highlight=False, soft_wrap=True)


@report_app.command("pstn-usage")
def pstn_usage(tenant: Tenant, out: Out, from_: From = None, to: To = None, days: Days = None,
               user: User = None, db: Db = None) -> None:
    """Export the PSTN usage report (the 20 columns of the PSTN export); prints the totals
    charged and uncollected."""
    _export("pstn-usage", tenant, out, from_, to, days, db, user)


@report_app.command("sms-usage")
def sms_usage(tenant: Tenant, out: Out, from_: From = None, to: To = None, days: Days = None,
              user: User = None, db: Db = None) -> None:
    """Export the SMS usage report."""
    _export("sms-usage", tenant, out, from_, to, days, db, user)


StatementOut = Annotated[Path, typer.Option("--out", dir_okay=False,
                                            help="output file: .json, .csv or .pdf")]
Month = Annotated[str, typer.Option("--month", help="the calendar month, YYYY-MM (UTC)")]


def statement(tenant: Tenant, month: Month, out: StatementOut, db: Db = None) -> None:
    """Write a tenant's monthly statement (opening, purchases, auto-recharges, usage by
    category, corrections, expiries, closing; reconciled to the ledger) as JSON, CSV or PDF,
    by the extension of ``--out``."""
    import json

    from commcredits.services import statements

    ext = out.suffix.lower().lstrip(".")
    if ext not in statements.FORMATS:
        _err.print(f"[red]error[/red] --out must end in .json, .csv or .pdf (got {out.name!r})")
        raise typer.Exit(2)
    if not out.parent.is_dir():
        _err.print(f"[red]error[/red] the folder {str(out.parent)!r} does not exist")
        raise typer.Exit(2)
    rt: Any = _runtime(db)
    try:
        with rt.db.uow(readonly=True) as uow:
            view = statements.statement(uow, tenant, month)
    except DomainError as e:
        _err.print(f"[red]error[/red] {e.code}: {e.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2 if e.kind is ErrorKind.INVALID else 1) from None
    body: bytes
    if ext == "json":
        body = (json.dumps(view, ensure_ascii=False, indent=2) + "\n").encode()
    elif ext == "csv":
        body = statements.to_csv(view).encode()
    else:
        body = statements.to_pdf(view)
    partial = out.with_name(f".{out.name}.part")
    try:
        partial.write_bytes(body)
        os.replace(partial, out)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    _out.print(f"statement {view['month']} of {view['tenant_id']}: opening "
               f"{view['opening_balance']}, closing {view['closing_balance']} "
               f"{view['currency']}{'' if view['final'] else ' (not final)'} → {out}",
               highlight=False, soft_wrap=True)
