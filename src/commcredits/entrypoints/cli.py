"""The ``commcredits`` command line (API.md §CLI)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from commcredits.domain.errors import DomainError
from commcredits.entrypoints.cli_bus import ingest_app
from commcredits.entrypoints.cli_common import (
    CLI_ACTOR,
    DbOption,
    _fail,
    _runtime,
    _settings,
    err,
    out,
    shown_url,
)
from commcredits.entrypoints.cli_files import cdrs_app, licenses_app, rates_app
from commcredits.entrypoints.cli_report import report_app
from commcredits.entrypoints.cli_report import statement as statement_command
from commcredits.entrypoints.cli_rerate import rerate

app = typer.Typer(help="Communications credits: prepaid balance and real-time PSTN charging.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
admins_app = typer.Typer(help="Console admins (tenant and operator).", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs.", no_args_is_help=True)
ledger_app = typer.Typer(help="The ledger.", no_args_is_help=True)
payments_app = typer.Typer(help="Card payments.", no_args_is_help=True)
for sub, name in ((db_app, "db"), (keys_app, "keys"), (admins_app, "admins"),
                  (licenses_app, "licenses"), (jobs_app, "jobs"), (ledger_app, "ledger"),
                  (rates_app, "rates"), (cdrs_app, "cdrs"), (report_app, "report"),
                  (payments_app, "payments"), (ingest_app, "ingest")):
    app.add_typer(sub, name=name)
app.command("statement")(statement_command)
app.command("rerate")(rerate)

@app.command()
def serve(db: DbOption = None, host: str = "127.0.0.1", port: int = 8000,
          jobs: bool = typer.Option(True, help="run background jobs (one process of the "
                                               "database runs them)"),
          workers: int = typer.Option(1, min=1, help="server processes (production: one "
                                                     "per two cores, README)"),
          diameter_port: int | None = typer.Option(None, help="also serve Diameter Ro/Gy "
                                                   "on this port (one worker)"),
          origin_host: str = "commcredits.local", origin_realm: str = "local",
          peer: Annotated[list[str] | None, typer.Option(
              help="Origin-Host of a Diameter peer allowed in (repeat)")] = None) -> None:
    """API + console + background jobs. ``--workers N`` serves from N processes;
    ``--diameter-port`` serves Diameter beside HTTP (see ``commcredits diameter``)."""
    import os

    import uvicorn

    from commcredits.config import DEFAULT_SECRET
    from commcredits.entrypoints import logs
    from commcredits.entrypoints.api.asgi import JOBS_ENV
    from commcredits.entrypoints.http_server import GuardedHttpToolsProtocol, uvicorn_options
    rt = _runtime(db)  # migrates once, before any worker starts
    s = rt.settings
    if s.secret_key == DEFAULT_SECRET and not s.manual_clock:
        err.print("[red]refusing to start[/red]: COMMCREDITS_SECRET_KEY is the default, so "
                  "anyone could forge console sessions. Set it to a long random value.")
        raise typer.Exit(2)
    log_config = logs.configure(s.log_json)
    out.print(f"commcredits on http://{host}:{port}  (db: {s.db.split('@')[-1]}, "
              f"{workers} worker{'s' if workers > 1 else ''})")
    # slow or idle clients are closed, connections are limited (entrypoints/http_server.py)
    options = uvicorn_options(s)
    if diameter_port is not None:
        if workers != 1:
            err.print("[red]error[/red] --diameter-port serves from one process: run "
                      "`commcredits diameter` beside a multi-worker serve instead")
            raise typer.Exit(2)
        from commcredits.entrypoints import diameter as dia
        dia.start_in_thread(rt, dia.Config(origin_host, origin_realm, frozenset(peer or ()),
                                           host_ip=host, slice_s=s.grant_slice_s),
                            host, diameter_port)
        out.print(f"diameter on {host}:{diameter_port} as {origin_host}")
    if workers == 1:
        from commcredits.entrypoints.api.app import create_app
        uvicorn.run(create_app(runtime=rt, run_jobs=jobs), host=host, port=port,
                    log_level="info", log_config=log_config, **options)
        return
    rt.db.engine.dispose()
    os.environ["COMMCREDITS_DB"] = s.db  # the workers read their settings here
    os.environ[JOBS_ENV] = "1" if jobs else "0"
    os.environ["COMMCREDITS_REQUEST_TIMEOUT_S"] = str(s.request_timeout_s)
    os.environ["COMMCREDITS_MAX_CONNECTIONS_PER_CLIENT"] = str(s.max_connections_per_client)
    os.environ["COMMCREDITS_LIMIT_CONCURRENCY"] = str(s.limit_concurrency)
    options["http"] = GuardedHttpToolsProtocol  # importable; reads its limits from the env
    uvicorn.run("commcredits.entrypoints.api.asgi:create", factory=True, workers=workers,
                host=host, port=port, log_level="info", log_config=log_config, **options)


@app.command()
def diameter(db: DbOption = None, host: str = "127.0.0.1", port: int = 3868,
             origin_host: str = typer.Option(..., help="our Diameter identity"),
             origin_realm: str = typer.Option(..., help="our realm"),
             peer: Annotated[list[str], typer.Option(
                 help="Origin-Host of a peer allowed in (repeat)")] = ...,  # type: ignore[assignment]
             cer_timeout: float = typer.Option(5.0, help="seconds a new connection has to "
                                                         "send its CER")) -> None:
    """Diameter Ro/Gy (Credit-Control) over TCP, on the same database as ``serve``."""
    import asyncio
    import contextlib

    from commcredits.entrypoints import diameter as dia
    from commcredits.entrypoints import logs
    rt = _runtime(db)
    logs.configure(rt.settings.log_json)
    config = dia.Config(origin_host, origin_realm, frozenset(peer), host_ip=host,
                        cer_timeout_s=cer_timeout, slice_s=rt.settings.grant_slice_s)
    server = dia.attach(rt, config)
    out.print(f"commcredits diameter on {host}:{port} as {origin_host} "
              f"(peers: {', '.join(sorted(peer))})")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(dia.run(rt, server, host, port))


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


@db_app.command("citus-plan")
def db_citus_plan(db: DbOption = None) -> None:
    """Print the Citus statements that distribute the schema by tenant (PostgreSQL);
    exit 1 naming every table that could not be distributed."""
    from commcredits.adapters.db.citus import blockers, plan
    from commcredits.adapters.db.engine import make_engine
    settings = _settings(db)
    err.print(f"database: {shown_url(settings.db)}", highlight=False, soft_wrap=True)
    if not settings.db.startswith("postgres"):
        err.print("[red]error[/red] citus-plan inspects a PostgreSQL schema, not SQLite",
                  highlight=False)
        raise typer.Exit(2)
    engine = make_engine(settings.db, pool_size=1)
    try:
        with engine.connect() as conn:
            problems, statements = blockers(conn), plan(conn)
    finally:
        engine.dispose()
    if problems:
        err.print("[red]error[/red] not ready for Citus:\n" + "\n".join(problems),
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    for line in statements:
        out.print(line, highlight=False, soft_wrap=True)


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
        uow.actor = CLI_ACTOR
        try:
            key_id, key, parsed = create_api_key(uow, role, tenant)
        except DomainError as e:
            _fail(e)
        uow.commit()
    err.print(f"created {parsed} key {key_id}" + (f" for tenant {tenant}" if tenant else ""))
    print(key)


@admins_app.command("create")
def admins_create(
        email: Annotated[str, typer.Argument(help="the admin's sign-in email")],
        operator: Annotated[bool, typer.Option("--operator",
                                               help="an operator admin (/operator)")] = False,
        tenant: Annotated[str | None, typer.Option(help="tenant id (tenant admins)")] = None,
        role: Annotated[str, typer.Option(help="tenant role")] = "global_admin",
        password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                              confirmation_prompt=True,
                                              envvar="COMMCREDITS_ADMIN_PASSWORD")] = "",
        db: DbOption = None) -> None:
    """Create a console admin: ``--operator`` for the operator console, else ``--tenant``."""
    from commcredits.services import access, operator_admins
    rt = _runtime(db)
    with rt.db.uow() as uow:
        uow.actor = CLI_ACTOR
        try:
            if operator:
                made = operator_admins.add(uow, email, password)
            elif tenant is None:
                raise DomainError("validation_error", "give --operator or --tenant TENANT_ID")
            else:
                made = access.add_admin(uow, tenant, email, password, role)
        except DomainError as e:
            _fail(e)
        uow.commit()
    err.print(f"created {made['role']} admin {made['email']} ({made['id']})")


@app.command()
def demo(db: DbOption = None,
         usage: Annotated[int, typer.Option(
             min=0, max=366, metavar="DAYS",
             help="fill the last DAYS days with calls and SMS charged through the real "
                  "path (only when the demo tenant is created by this run)")] = 0) -> None:
    """Load a demo operator key, tenant, users and credits; print the keys."""
    from commcredits.entrypoints.demo import load_demo
    rt = _runtime(db)
    for line in load_demo(rt, usage):
        print(line)


class JobName(StrEnum):
    expire = "expire"
    calls = "calls"
    cuts = "cuts"
    recharge = "recharge"
    payments = "payments"
    notify = "notify"
    pools = "pools"
    statements = "statements"
    events = "events"
    all = "all"


@jobs_app.command("run")
def jobs_run(which: Annotated[JobName, typer.Argument()] = JobName.all,
             db: DbOption = None) -> None:
    """Run due jobs once. SIGTERM or Ctrl-C stops after the chunk in progress (committed);
    the next run does the rest."""
    import signal
    import threading

    from commcredits.services import jobs
    rt = _runtime(db)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    done = jobs.run(rt.jobs(stopping=stopping.is_set), which.value)
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


@payments_app.command("refund")
def payments_refund(attempt: Annotated[str, typer.Argument(help="a payment attempt that "
                                                                 "needs review (charged)")],
                    db: DbOption = None) -> None:
    """Refund money the gateway took that never became credits (``reconcile``'s
    needs_review); a repeat refunds nothing twice."""
    from commcredits.services import payment_corrections
    rt = _runtime(db)
    try:
        row = payment_corrections.refund_attempt(rt.db, rt.gateway, attempt)
    except DomainError as e:
        err.print(f"[red]{e.code}[/red] {e.message}")
        raise typer.Exit(1) from None
    out.print(f"{row.id}: {row.status} ({row.amount} {row.currency}, refund "
              f"{row.refund_reference})")


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None) -> None:
    """Re-derive every balance and lot from the ledger; exit 1 on any mismatch."""
    import time

    from commcredits.services import ledger
    rt = _runtime(db, migrate=False)
    began = time.perf_counter()
    with rt.db.uow(readonly=True) as uow:
        checked, problems = ledger.verify(uow)
    took = f"{time.perf_counter() - began:.1f} s"
    if problems:
        table = Table("tenant", "what", "stored", "derived", title="ledger mismatches")
        for p in problems:
            table.add_row(p.tenant_id, p.what, str(p.stored), str(p.derived))
        out.print(table)
        err.print(f"[red]FAILED[/red] {len(problems)} mismatches in {checked} tenants ({took})")
        raise typer.Exit(1)
    out.print(f"ledger OK: {checked} tenants, every balance and lot matches the ledger "
              f"({took})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
