"""The usage reports' file formats: JSON, RFC 4180 CSV and streamed Excel, each written as it
is read (constant memory). The rows come from :mod:`reports`."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from commcredits.domain.csv_cells import neutral_row
from commcredits.services.reports import Export, Report, Row, as_dicts, each_row

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def json_chunks(report: Report, rows_: Iterable[Row], extras: bool = False) -> Iterator[str]:
    """A JSON array of objects keyed by the column names, in column order (then the
    report's ``extra`` fields when ``extras``: the rows must carry them), piece by piece."""
    yield "["
    first = True
    for row in as_dicts(report, rows_, extras):
        yield ("" if first else ",") + json.dumps(row, ensure_ascii=False)
        first = False
    yield "]"


class _Echo:
    def write(self, line: str) -> str:
        return line


def csv_lines(report: Report, rows_: Iterable[Row]) -> Iterator[str]:
    """RFC 4180: a header row, CRLF line ends, fields quoted when needed; None is empty;
    a text a spreadsheet would take for a formula starts with ``'`` (:mod:`csv_cells`)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(report.columns)
    for row in rows_:
        yield writer.writerow(neutral_row(row))


def csv_bytes(report: Report, rows_: Iterable[Row],
              chunk: int = 256 * 1024) -> Iterator[bytes]:
    """The CSV as UTF-8, about ``chunk`` bytes at a time (few, large writes)."""
    fast = rows_.csv_chunks() if isinstance(rows_, Export) else None
    lines = csv_lines(report, () if fast is not None else rows_)
    out: list[str] = []
    size = 0
    for line in lines:
        out.append(line)
        size += len(line)
        if size >= chunk:
            yield "".join(out).encode("utf-8")
            out, size = [], 0
    if out:
        yield "".join(out).encode("utf-8")
    if fast is not None:
        yield from fast


class _Tally:
    """Counts rows as they go out and passes each count on to ``progress``."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.rows = 0
        self.progress = progress

    def __call__(self, n: int) -> None:
        self.rows += n
        if self.progress:
            self.progress(n)


def write_csv(path: Path, report: Report, rows_: Iterable[Row],
              progress: Callable[[int], None] | None = None) -> int:
    """Write the CSV to ``path``; returns the number of data rows. ``progress`` gets the
    number of rows written since its last call."""
    tally = _Tally(progress)
    if isinstance(rows_, Export):
        rows_.on_rows = tally
    else:
        rows_ = each_row(rows_, tally)
    with path.open("wb") as fh:
        for part in csv_bytes(report, rows_):
            fh.write(part)
    return tally.rows


def _xlsx_layout(report: Report) -> tuple[list[str], list[int]]:
    from commcredits.adapters import xlsx
    kinds = [xlsx.MONEY if c in report.money else xlsx.INTEGER if c in report.integers
             else xlsx.TIME if c in report.times else xlsx.TEXT for c in report.columns]
    return kinds, [max(20 if c in report.times else 12, len(c) + 2) for c in report.columns]


def xlsx_chunks(report: Report, rows_: Iterable[Row],
                progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The .xlsx as it is made, in constant memory: the first bytes at once, then about
    256 KB at a time (:mod:`commcredits.adapters.xlsx`); a new sheet every 1,048,575 rows."""
    from commcredits.adapters import xlsx
    kinds, widths = _xlsx_layout(report)
    return xlsx.stream(report.columns, kinds, widths, rows_, progress)


def write_xlsx(path: Path, report: Report, rows_: Iterable[Row],
               progress: Callable[[int], None] | None = None) -> int:
    """Write an .xlsx in constant memory. Returns the number of data rows; ``progress``
    gets the number of rows written since its last call."""
    tally = _Tally(progress)
    with path.open("wb") as fh:
        for part in xlsx_chunks(report, rows_, tally):
            fh.write(part)
    return tally.rows
