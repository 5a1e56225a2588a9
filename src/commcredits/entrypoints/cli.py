"""The ``commcredits`` command line (API.md §CLI)."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commcredits.config import Settings
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.cli_report import report_app

app = typer.Typer(help="Communications credits: prepaid balance and real-time PSTN charging.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
licenses_app = typer.Typer(help="Licenses.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs.", no_args_is_help=True)
ledger_app = typer.Typer(help="The ledger.", no_args_is_help=True)
payments_app = typer.Typer(help="Card payments.", no_args_is_help=True)
rates_app = typer.Typer(help="Rate decks.", no_args_is_help=True)
cdrs_app = typer.Typer(help="Call detail records from switches that only report CDRs.",
                       no_args_is_help=True)
for sub, name in ((db_app, "db"), (keys_app, "keys"), (licenses_app, "licenses"),
                  (jobs_app, "jobs"), (ledger_app, "ledger"), (rates_app, "rates"),
                  (cdrs_app, "cdrs"), (report_app, "report"),
                  (payments_app, "payments")):
    app.add_typer(sub, name=name)

out = Console()
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (else COMMCREDITS_DB)")]


def _settings(db: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


def shown_url(url: str) -> str:
    """The database URL without its password, as each command reports it."""
    import sqlalchemy as sa
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: say it as given
        return url


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    import sqlalchemy as sa
    database = sa.engine.make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _runtime(db: str | None, *, migrate: bool = True) -> Any:
    """Settings, the database (said on stderr) and, unless asked not to, its migrations.
    A command that only reads refuses a SQLite file that does not exist instead of creating
    an empty one."""
    from commcredits.adapters.db.migrate import upgrade
    from commcredits.entrypoints.runtime import Runtime
    settings = _settings(db)
    err.print(f"database: {shown_url(settings.db)}", highlight=False, soft_wrap=True)
    file = _sqlite_file(settings.db)
    if not migrate and file is not None and not file.exists():
        err.print(f"[red]error[/red] no database at {file}: run `commcredits db upgrade`, or "
                  "point --db / COMMCREDITS_DB at yours", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if migrate:
        upgrade(settings.db)
    return Runtime.from_settings(settings)


def _fail(e: DomainError) -> None:
    if e.details:  # a refused file: the lines once, under one heading
        err.print(f"[red]error[/red] {e.code}: {e.message.split(':', 1)[0]} "
                  f"({len(e.details)} bad lines)", highlight=False, soft_wrap=True)
        _print_details(e)
    else:
        err.print(f"[red]error[/red] {e.code}: {e.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def read_text_file(path: Path, what: str) -> str:
    """A text file as UTF-8 (a BOM is allowed). Binary or UTF-16 content is a clear error
    (exit 2), never a traceback."""
    data = path.read_bytes()
    if data[:2] in {b"\xff\xfe", b"\xfe\xff"}:
        err.print(f"[red]error[/red] {what} {str(path)!r} is UTF-16 text; save it as UTF-8 "
                  "(CSV UTF-8) and try again", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        err.print(f"[red]error[/red] {what} {str(path)!r} is not UTF-8 text (byte {e.start} "
                  "cannot be read); give a CSV saved as UTF-8", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(2) from None
    if "\x00" in text:
        err.print(f"[red]error[/red] {what} {str(path)!r} is a binary file, not CSV text",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    return text


@app.command()
def serve(db: DbOption = None, host: str = "127.0.0.1", port: int = 8000,
          jobs: bool = typer.Option(True, help="run background jobs in this process")) -> None:
    """API + console + background jobs in one process."""
    import uvicorn

    from commcredits.config import DEFAULT_SECRET
    from commcredits.entrypoints import logs
    from commcredits.entrypoints.api.app import create_app
    rt = _runtime(db)
    s = rt.settings
    if s.secret_key == DEFAULT_SECRET and not s.manual_clock:
        err.print("[red]refusing to start[/red]: COMMCREDITS_SECRET_KEY is the default, so "
                  "anyone could forge console sessions. Set it to a long random value.")
        raise typer.Exit(2)
    log_config = logs.configure(s.log_json)
    out.print(f"commcredits on http://{host}:{port}  (db: {s.db.split('@')[-1]})")
    # idle keep-alive sockets are closed after keep_alive_s; beyond limit_concurrency
    # connections new requests get 503 at once. Header/body read timeouts for slow clients
    # belong to the front proxy (docs/production.md).
    uvicorn.run(create_app(runtime=rt, run_jobs=jobs), host=host, port=port,
                log_level="info", log_config=log_config, timeout_keep_alive=s.keep_alive_s,
                limit_concurrency=s.limit_concurrency, h11_max_incomplete_event_size=16 * 1024)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Apply migrations."""
    from commcredits.adapters.db.migrate import current_revision, upgrade
    settings = _settings(db)
    err.print(f"database: {shown_url(settings.db)}", highlight=False, soft_wrap=True)
    before = current_revision(settings.db)
    upgrade(settings.db)
    after = current_revision(settings.db)
    if before is None:
        out.print(f"created the schema (revision {after})", highlight=False)
    elif before != after:
        out.print(f"upgraded the schema from revision {before} to {after}", highlight=False)
    else:
        out.print(f"database is up to date (revision {after})", highlight=False)


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="operator, switch, global_admin, ...")],
                tenant: Annotated[str | None, typer.Option(help="tenant id (tenant roles)")] = None,
                db: DbOption = None) -> None:
    """Print a new API key (the key alone on the last line)."""
    from commcredits.domain.access import TENANT_ROLES, Role
    from commcredits.services.access import create_api_key
    if role in {r.value for r in TENANT_ROLES} and tenant is None:
        err.print(f"[red]error[/red] a {role} key acts for one tenant: give --tenant TENANT_ID",
                  highlight=False)
        raise typer.Exit(2)
    if role in {Role.OPERATOR.value, Role.SWITCH.value} and tenant is not None:
        err.print(f"[red]error[/red] a {role} key acts for all tenants: leave out --tenant",
                  highlight=False)
        raise typer.Exit(2)
    rt = _runtime(db)
    with rt.db.uow() as uow:
        try:
            key_id, key, parsed = create_api_key(uow, role, tenant)
        except DomainError as e:
            _fail(e)
        uow.commit()
    err.print(f"created {parsed} key {key_id}" + (f" for tenant {tenant}" if tenant else ""))
    print(key)


@app.command()
def demo(db: DbOption = None) -> None:
    """Load a demo operator key, tenant, users and credits; print the keys."""
    from commcredits.entrypoints.demo import load_demo
    rt = _runtime(db)
    for line in load_demo(rt):
        print(line)


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


def _print_details(e: DomainError, shown: int = 50) -> None:
    details = e.details or []
    for d in details[:shown]:
        err.print(f"  line {d['line']}: {d['message']}", highlight=False, soft_wrap=True)
    if len(details) > shown:
        err.print(f"  … and {len(details) - shown} more", highlight=False)


@cdrs_app.command("import")
def cdrs_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                db: DbOption = None) -> None:
    """Rate a CSV of finished calls (call_id,tenant_id,call_type,from,to,upn,organizer_upn,
    start_time,duration_s). Checked whole first; idempotent by call id."""
    from commcredits.entrypoints import metrics
    from commcredits.services import cdrs, recharge
    text = read_text_file(file, "CDR file")
    rt = _runtime(db)
    try:
        rows = cdrs.parse(text)
    except DomainError as e:
        _fail(e)
    counts: dict[str, int] = {}
    problems: list[cdrs.CdrResult] = []
    with Progress(TextColumn("rating CDRs"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task("rate", total=len(rows))
        for result in cdrs.rate_all(rt.db, rows, progress=lambda _: bar.advance(task)):
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.uncollected and result.currency:
                metrics.count_uncollected({"uncollected": result.uncollected,
                                           "currency": result.currency})
            if result.status in {"blocked", "error"}:
                problems.append(result)
    recharge.run_due(rt.db, rt.gateway, rt.settings.max_recharges_per_day)
    if problems:
        table = Table("line", "call id", "result", "detail", title="CDRs not charged")
        for p in problems[:200]:
            table.add_row(str(p.line), p.call_id, p.status, p.detail or "")
        out.print(table)
    out.print(", ".join(f"{counts.get(k, 0)} {k}" for k in ("rated", "duplicate", "blocked",
                                                             "error")))


class JobName(StrEnum):
    expire = "expire"
    calls = "calls"
    cuts = "cuts"
    recharge = "recharge"
    payments = "payments"
    notify = "notify"
    pools = "pools"
    all = "all"


@jobs_app.command("run")
def jobs_run(which: Annotated[JobName, typer.Argument()] = JobName.all,
             db: DbOption = None) -> None:
    """Run due jobs once."""
    from commcredits.services import jobs
    rt = _runtime(db)
    done = jobs.run(rt.jobs(), which.value)
    table = Table("job", "items")
    for name, n in done.items():
        table.add_row(name, str(n))
    out.print(table)


@payments_app.command("reconcile")
def payments_reconcile(
        older_than: Annotated[int, typer.Option(help="minutes a pending payment must have "
                                                     "waited (it may still be in flight)")] = 5,
        db: DbOption = None) -> None:
    """Settle card payments a crash interrupted (charge again with the same idempotency key,
    then fund) and list money taken that no lot holds; exit 1 if any needs a person."""
    from datetime import timedelta

    from commcredits.services import payments
    rt = _runtime(db)
    results = payments.reconcile(rt.db, rt.gateway, timedelta(minutes=older_than))
    table = Table("attempt", "tenant", "amount", "outcome", title="payments reconciled")
    for r in results:
        table.add_row(r.attempt_id, r.tenant_id, f"{r.amount} {r.currency}", r.outcome)
    out.print(table)
    review = [r for r in results if r.outcome == "needs_review"]
    out.print(f"{sum(r.outcome == 'funded' for r in results)} funded, "
              f"{sum(r.outcome == 'failed' for r in results)} failed, "
              f"{len(review)} need review")
    if review:
        raise typer.Exit(1)


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None) -> None:
    """Re-derive every balance and lot from the ledger; exit 1 on any mismatch."""
    from commcredits.services import ledger
    rt = _runtime(db, migrate=False)
    with rt.db.uow() as uow:
        checked, problems = ledger.verify(uow)
    if problems:
        table = Table("tenant", "what", "stored", "derived", title="ledger mismatches")
        for p in problems:
            table.add_row(p.tenant_id, p.what, str(p.stored), str(p.derived))
        out.print(table)
        err.print(f"[red]FAILED[/red] {len(problems)} mismatches in {checked} tenants")
        raise typer.Exit(1)
    out.print(f"ledger OK: {checked} tenants, every balance and lot matches the ledger")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
