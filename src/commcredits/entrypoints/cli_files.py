"""Commands that read a file: bulk licence assignment, rate decks and CDRs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commcredits.domain.errors import DomainError
from commcredits.entrypoints.cli_common import (
    DbOption,
    _fail,
    _runtime,
    check_text_file,
    err,
    out,
    read_text_file,
)

licenses_app = typer.Typer(help="Licenses.", no_args_is_help=True)
rates_app = typer.Typer(help="Rate decks.", no_args_is_help=True)
cdrs_app = typer.Typer(help="Call detail records from switches that only report CDRs.",
                       no_args_is_help=True)


def _read_upns(path: Path) -> list[str]:
    """A CSV with a ``upn`` column (or ``UserPrincipalName``), or one UPN per line."""
    text = read_text_file(path, "users file")
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    for name in ("upn", "userprincipalname"):
        if name in header:
            i = header.index(name)
            return [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
    return [r[0].strip() for r in rows if r and r[0].strip() and "@" in r[0]]


@licenses_app.command("assign")
def licenses_assign(
    tenant: Annotated[str, typer.Option(help="tenant id")],
    sku: Annotated[str, typer.Option(help="SKU to assign, e.g. MCOPSTNPP")],
    users_file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                    help="CSV with a upn column")] = None,
    all_eligible: Annotated[bool, typer.Option(help="every user who may get it")] = False,
    db: DbOption = None,
) -> None:
    """Bulk assignment with a progress bar and a per-user result table."""
    from commcredits.services import directory
    if (users_file is None) == (not all_eligible):
        err.print("[red]error[/red] give exactly one of --users-file or --all-eligible")
        raise typer.Exit(2)
    rt = _runtime(db)
    with rt.db.uow() as uow:
        try:
            upns = (_read_upns(users_file) if users_file
                    else directory.eligible_upns(uow, tenant, sku))
            directory.get_tenant(uow, tenant)
        except DomainError as e:
            _fail(e)

    def run_one(step: Any) -> Any:
        with rt.db.uow() as uow:
            result = step(uow)
            uow.commit()
            return result

    with Progress(TextColumn("assigning {task.fields[sku]}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("assign", total=len(upns), sku=sku)
        try:
            results = directory.bulk_assign(run_one, tenant, sku, upns,
                                            progress=lambda _: bar.advance(task))
        except DomainError as e:
            _fail(e)
    table = Table("UPN", "Result", "Detail", title=f"{sku} for {len(results)} users")
    for r in results:
        colour = {"assigned": "green", "already_assigned": "cyan"}.get(r.status, "red")
        table.add_row(r.upn, f"[{colour}]{r.status}[/{colour}]", r.message or "")
    out.print(table)
    counts = {s: sum(r.status == s for r in results)
              for s in ("assigned", "already_assigned", "error")}
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts["error"]:
        raise typer.Exit(1)


@rates_app.command("import")
def rates_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                 currency: Annotated[str, typer.Option(help="ISO 4217, e.g. USD")],
                 db: DbOption = None) -> None:
    """Replace a currency's rate deck with a CSV; any bad line refuses the whole file."""
    from commcredits.services import rating
    text = read_text_file(file, "rate deck")
    rt = _runtime(db)
    with rt.db.uow() as uow:
        try:
            result = rating.import_deck(uow, currency, text)
        except DomainError as e:
            _fail(e)
        uow.commit()
    out.print(f"imported {result['rows']} rates for {result['currency']} "
              f"(deck version {result['version']})")


@cdrs_app.command("import")
def cdrs_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                db: DbOption = None) -> None:
    """Rate a CSV of finished calls (call_id,tenant_id,call_type,from,to,upn,organizer_upn,
    start_time,duration_s). Checked whole first (streamed); rated in batches; idempotent by
    call id."""
    import time

    from commcredits.entrypoints import metrics
    from commcredits.services import cdr_files, cdrs, recharge
    check_text_file(file, "CDR file")
    rt = _runtime(db)
    began = time.perf_counter()
    try:
        total = cdr_files.check_file(file)
    except DomainError as e:
        _fail(e)
    counts: dict[str, int] = {}
    problems: list[cdrs.CdrResult] = []
    with Progress(TextColumn("rating CDRs"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("rate", total=total)
        for done, result in enumerate(cdrs.rate_all(rt.db, cdr_files.read_file(file)), start=1):
            if done % 1000 == 0 or done == total:  # the bar costs more than a CDR
                bar.update(task, completed=done)
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.uncollected and result.currency and result.uncollected.strip("0."):
                metrics.count_uncollected({"uncollected": result.uncollected,
                                           "currency": result.currency})
            if result.status in {"blocked", "error"} and len(problems) < 200:
                problems.append(result)
    if counts.get("rated", 0) >= cdrs.ANALYZE_AFTER:
        cdrs.refresh_statistics(rt.db)
    recharge.run_due(rt.db, rt.gateway, rt.settings.max_recharges_per_day)
    if problems:
        table = Table("line", "call id", "result", "detail",
                      title="CDRs not charged" + (" (the first 200)" if len(problems) >= 200
                                                  else ""))
        for p in problems:
            table.add_row(str(p.line), p.call_id, p.status, p.detail or "")
        out.print(table)
    out.print(", ".join(f"{counts.get(k, 0)} {k}" for k in ("rated", "duplicate", "blocked",
                                                             "error")))
    unknown = cdr_files.unknown_file_columns(file)
    if unknown:
        out.print(f"unknown columns ignored: {', '.join(unknown)} (the columns read are "
                  f"{','.join(cdrs.COLUMNS)})", markup=False)
    err.print(f"{total} CDRs in {time.perf_counter() - began:.1f} s")


