"""What every ``commcredits`` command shares: the consoles, the ``--db`` option, the runtime
(with its database said on stderr), error printing and reading text files safely."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from commcredits.config import Settings
from commcredits.domain.errors import DomainError
from commcredits.services.audit import Actor

out = Console()
CLI_ACTOR = Actor("cli", "operator", "cli", "cli")  # who the audit log names for CLI changes
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


def check_text_file(path: Path, what: str) -> None:
    """Like :func:`read_text_file`, in constant memory (the file is read in 1 MB pieces)."""
    import codecs
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as fh:
        while piece := fh.read(1 << 20):
            if offset == 0 and piece[:2] in {b"\xff\xfe", b"\xfe\xff"}:
                read_text_file_error(path, what, "is UTF-16 text; save it as UTF-8 (CSV "
                                     "UTF-8) and try again")
            try:
                text = decoder.decode(piece)
            except UnicodeDecodeError as e:
                read_text_file_error(path, what, f"is not UTF-8 text (byte {offset + e.start} "
                                     "cannot be read); give a CSV saved as UTF-8")
            if "\x00" in text:
                read_text_file_error(path, what, "is a binary file, not CSV text")
            offset += len(piece)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        read_text_file_error(path, what, "ends in the middle of a UTF-8 character")


def read_text_file_error(path: Path, what: str, why: str) -> NoReturn:
    err.print(f"[red]error[/red] {what} {str(path)!r} {why}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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


def _print_details(e: DomainError, shown: int = 50) -> None:
    details = e.details or []
    for d in details[:shown]:
        err.print(f"  line {d['line']}: {d['message']}", highlight=False, soft_wrap=True)
    if len(details) > shown:
        err.print(f"  … and {len(details) - shown} more", highlight=False)
