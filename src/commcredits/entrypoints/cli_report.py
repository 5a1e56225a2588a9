"""``commcredits report ...`` (filled in by the reports work)."""

from __future__ import annotations

import typer

report_app = typer.Typer(help="Usage reports.", no_args_is_help=True)
