"""Cells that a spreadsheet cannot take for a formula (OWASP "CSV Injection").

Excel, LibreOffice and Google Sheets read a CSV cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (``=HYPERLINK(...)``, ``@SUM(...)``), and a leading tab or carriage
return can hide such a start. Every CSV the service writes (usage exports by API, console
and CLI, the admin-center ZIP, the audit log) passes each cell through :func:`neutral`:
a text cell with such a start gets a leading ``'``, which spreadsheets show as text. A
number stays as it is (``-1.50``, ``+3``), and so does an E.164 number (``+14255550100``),
so a cell that was a number or a phone number reads back the same.

The PostgreSQL export renders CSV in the database (``COPY``); it applies the same rule,
built from :data:`FORMULA_STARTS` and :data:`NUMBER_PATTERN` here, to the cells clients and
operators write (``adapters/db/usage_export.py``; the others are the service's own codes),
and the export tests compare both renderings byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_STARTS = "=+-@\t\r"
# a plain decimal number, signed or not: also every E.164 number ("+" then digits)
NUMBER_PATTERN = r"[+-]?[0-9]+(\.[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)
QUOTE = "'"


def neutral(cell: object) -> object:
    """``cell`` as it may go into a CSV: a text that a spreadsheet would take for a formula
    gets a leading ``'``; anything else (numbers, None, harmless text) is returned as is."""
    if type(cell) is str and cell[:1] in _STARTS and not _is_number(cell):
        return QUOTE + cell
    return cell


def neutral_row(row: Iterable[object]) -> list[object]:
    """Every cell of ``row`` (an iterable of cells) through :func:`neutral` (inlined: an
    export calls this for every row)."""
    return [QUOTE + c if type(c) is str and c[:1] in _STARTS and not _is_number(c) else c
            for c in row]


_STARTS = frozenset(FORMULA_STARTS)


def _is_number(cell: str) -> bool:
    """:data:`NUMBER_PATTERN`, with a sign and digits (every E.164 number) told at once."""
    tail = cell[1:]
    if tail.isdigit() and tail.isascii() and cell[0] in "+-":
        return True
    return _NUMBER.fullmatch(cell) is not None
