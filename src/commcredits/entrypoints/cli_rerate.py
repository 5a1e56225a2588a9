"""``commcredits rerate (--tenant T | --all) --from D --to D [--deck C@V] [--apply]
[--csv FILE]``: re-rate a period (a dry run unless ``--apply``).

Prints the per-tenant totals (and with ``--csv`` writes the per-call diff); ``--apply``
then posts the corrections tenant by tenant (``services.rerate.apply``). Killed half-way, a
new run applies what is left: a tenant corrected already has nothing left to correct.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.entrypoints.cli_common import CLI_ACTOR, DbOption, _fail, _runtime, err, out


def rerate(
    from_: Annotated[str, typer.Option("--from", help="first day YYYY-MM-DD (UTC)")],
    to: Annotated[str, typer.Option("--to", help="last day YYYY-MM-DD (UTC), included")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="one tenant")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every tenant")] = False,
    deck: Annotated[str | None, typer.Option("--deck", help="CURRENCY@VERSION (the current "
                                                            "version); default: each "
                                                            "currency's current deck")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="post the corrections (default: a "
                                                        "dry run)")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", dir_okay=False,
                                                  help="write the per-call diff here")] = None,
    db: DbOption = None,
) -> None:
    """Re-rate a period's calls with a deck: a dry run (the diff) unless --apply."""
    from commcredits.services import rerate as service
    if (tenant is None) == (not all_):
        err.print("[red]error[/red] give --tenant T or --all (one of them)")
        raise typer.Exit(2)
    rt: Any = _runtime(db)
    try:
        scope = service.parse({"tenant_id": tenant, "from": from_, "to": to, "deck": deck})
        with rt.db.uow() as uow:
            uow.actor = CLI_ACTOR
            run = service.compute(uow, scope, CLI_ACTOR.label)
            uow.commit()
        if csv_file is not None:
            with csv_file.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(service.csv_rows(run))
        _print(run)
        if apply:
            run = service.apply(rt.db, run["id"], CLI_ACTOR.label, CLI_ACTOR)
            for item in run["applied"]:
                out.print(f"{item['tenant_id']}: {item['result']}", highlight=False)
    except DomainError as e:
        if e.kind is ErrorKind.INVALID:  # a bad option: exit 2, as for any usage error
            err.print(f"[red]error[/red] {e.code}: {e.message}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None
        _fail(e)
    out.print(f"rerate {run['id']}: {run['status']}", highlight=False)


def _print(run: dict[str, Any]) -> None:
    table = Table("tenant", "currency", "calls", "corrected", "old total", "new total",
                  "delta", "balance", title=f"rerate {run['id']} {run['from']} to {run['to']}")
    for t in run["tenants"]:
        table.add_row(t["tenant_id"], t["currency"], str(t["calls"]), str(t["corrected"]),
                      t["old_total"], t["new_total"], t["delta"], t["balance_delta"])
    out.print(table)
