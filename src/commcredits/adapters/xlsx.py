"""A streaming .xlsx writer: rows in, ZIP bytes out as they are made, constant memory.

XlsxWriter (even in ``constant_memory`` mode) spends microseconds per cell and only starts
the ZIP when the workbook is closed, so a million-row download would send nothing for half a
minute. This writer renders each row's XML in one pass and streams the ZIP (data descriptors,
ZIP64) so the first bytes leave at once. It writes what the usage reports need and no more:
inline text cells, whole numbers, exact decimal numbers with a number format, a bold frozen
header row, column widths, a new sheet every 1,048,575 rows.

Numbers are written from their decimal text (``<v>0.04</v>``), never through a float.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from itertools import islice
from typing import IO, Any

MAX_ROWS = 1_048_576  # per sheet, header included
EXCEL_DIGITS = 15  # significant digits Excel keeps in a number
CHUNK = 256 * 1024

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NEEDS_ESCAPE = re.compile(r"[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# a row's text joined by an invisible separator: whitespace next to it or at either end is
# some cell's leading or trailing whitespace (a separator in the data only costs the slow way)
_SEP = "\u2063"
_EDGE_SPACE = re.compile(r"(?:^|\u2063)\s|\s(?:\u2063|$)")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

TEXT, INTEGER, MONEY, TIME = "text", "integer", "money", "time"
TIME_STYLE = 2  # cell style of UTC date-times, shown as ISO 8601 with its Z (UTC) marker
TIME_FORMAT = 'yyyy-mm-dd"T"hh:mm:ss"Z"'  # Excel shows 2030-03-10T12:00:00Z
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})Z?")
_EPOCH = date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year quirk folded in)


def excel_serial(value: str) -> str | None:
    """``2030-03-10T12:00:00Z`` as an Excel date-time serial (days since 1899-12-30), written
    exactly from whole seconds: the day number, then the second of the day / 86400 to 10
    places (well under a millisecond). None when ``value`` is not such a time."""
    if _TIME.fullmatch(value) is None:
        return None
    days = _day_number(value[:10])  # the pattern fixes every field's place
    if days is None:
        return None
    second = int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])
    if not second:
        return str(days)
    return f"{days}.{(second * 10**10 + 43200) // 86400:010d}".rstrip("0")


@functools.lru_cache(maxsize=4096)
def _day_number(day: str) -> int | None:
    """``YYYY-MM-DD`` as Excel's day number (a report's rows share a few hundred days)."""
    try:
        return (date(int(day[:4]), int(day[5:7]), int(day[8:10])) - _EPOCH).days
    except ValueError:
        return None


def _letters(col: int) -> str:
    name = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        name = chr(65 + rem) + name
    return name


def _escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\r", "&#13;")  # a bare CR would be read back as LF
    # control characters are not allowed in XML: Excel's own escape is _xHHHH_
    return _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def _text_cell(ref: str, value: str) -> str:
    """``ref`` is ``' r="B7"'`` or empty (the cell follows the previous one)."""
    if _NEEDS_ESCAPE.search(value):
        value = _escape(value)
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c{ref} t="inlineStr"><is><t{space}>{value}</t></is></c>'


class _Sink:
    """A write-only file that hands what was written to a generator (written by the
    background thread, taken by the generator's)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.offset = 0
        self.lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self.lock:
            self.parts.append(bytes(data))
            self.size += len(data)
            self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        with self.lock:
            out = b"".join(self.parts)
            self.parts, self.size = [], 0
        return out


class _Background:
    """Runs calls in order on one thread: zlib releases the GIL, so compressing one chunk
    overlaps with rendering the next rows."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xlsx-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    item[0](*item[1])
                except BaseException as e:  # handed to the caller at its next step
                    self.error = e

    def put(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((fn, args))

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _SheetFile:
    """A worksheet's ZIP entry, opened and written on the background thread only."""

    def __init__(self, book: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        self.book, self.info = book, info
        self.file: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.file is None:
            self.file = self.book.open(self.info, "w", force_zip64=True)
        self.file.write(data)

    def close(self) -> None:
        self.write(b"")
        assert self.file is not None
        self.file.close()


class Workbook:
    """One worksheet (or more, past Excel's row limit) of ``columns`` with ``kinds``."""

    def __init__(self, out: IO[bytes] | _Sink, columns: Sequence[str], kinds: Sequence[str],
                 widths: Sequence[int], sheet_name: str = "Usage", level: int = 1) -> None:
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level)  # type: ignore[arg-type]
        self.columns, self.kinds, self.widths = list(columns), list(kinds), list(widths)
        self.sheet_name = sheet_name
        self.letters = [_letters(i) for i in range(len(columns))]
        self.money_styles: dict[int, int] = {}  # decimal places -> cell style index
        self.sheet_rows: list[int] = []  # rows of each finished sheet (its autofilter)
        self.sheets = 0
        self.sheet: Any = None
        self.row = 0
        self.written = 0
        self.out = _Background()

    # -- sheets ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin the first sheet (its header row) before any data row."""
        if self.sheet is None:
            self._new_sheet()

    def _new_sheet(self) -> None:
        self._end_sheet()
        self.sheets += 1
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{self.sheets}.xml", (1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        self.sheet = _SheetFile(self.zip, info)
        cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
                       for i, w in enumerate(self.widths))
        header = "".join(f'<c r="{self.letters[i]}1" s="1" t="inlineStr"><is><t>'
                         f"{_escape(name)}</t></is></c>" for i, name in enumerate(self.columns))
        self.out.put(self.sheet.write, (
            f'{_HEAD}<worksheet xmlns="{_NS}"><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            f'</sheetView></sheetViews><cols>{cols}</cols><sheetData>'
            f'<row r="1">{header}</row>').encode())
        self.row = 1

    def _end_sheet(self) -> None:
        if self.sheet is not None:
            sheet, self.sheet = self.sheet, None
            self.sheet_rows.append(self.row)
            self.out.put(sheet.write, (
                f'</sheetData><autoFilter ref="A1:{self.letters[-1]}{self.row}"/>'
                "</worksheet>").encode())
            self.out.put(sheet.close)

    # -- cells ----------------------------------------------------------------------------
    def _money(self, ref: str, value: str) -> str:
        exact = len(value) <= EXCEL_DIGITS + 1 or (
            _NUMBER.fullmatch(value) is not None
            and len(Decimal(value).as_tuple().digits) <= EXCEL_DIGITS)
        if not exact or not _NUMBER.fullmatch(value):
            return _text_cell(ref, value)  # Excel would round it: keep the exact text
        dot = value.find(".")
        places = 0 if dot < 0 else len(value) - dot - 1
        style = self.money_styles.get(places)
        if style is None:
            style = self.money_styles[places] = 3 + len(self.money_styles)
        return f'<c{ref} s="{style}"><v>{value}</v></c>'

    def _cell(self, col: int, ref: str, value: Any) -> str:
        kind = self.kinds[col]
        if kind == INTEGER and type(value) is int:
            return f"<c{ref}><v>{value}</v></c>"
        if kind == MONEY and isinstance(value, str):
            return self._money(ref, value)
        if kind == TIME and isinstance(value, str):
            serial = excel_serial(value)
            if serial is not None:
                return f'<c{ref} s="{TIME_STYLE}"><v>{serial}</v></c>'
        return _text_cell(ref, str(value))

    def write_rows(self, rows: Iterable[Sequence[Any]],
                   after: Callable[[int], None] | None = None, every: int = 1000) -> None:
        """Write ``rows``; ``after(n)`` is called every ``every`` rows with ``n`` written.

        A cell carries its reference only after an empty one (readers count cells in order
        otherwise); a row's text is checked for characters to escape in one go."""
        letters, cell = self.letters, self._cell
        plain_text = [k == TEXT for k in self.kinds]
        search, edges = _NEEDS_ESCAPE.search, _EDGE_SPACE.search
        buf: list[str] = []
        pending = 0
        self.start()
        for values in rows:
            if self.row >= MAX_ROWS:
                self._flush(buf)
                self._new_sheet()
            self.row += 1
            r = str(self.row)
            parts = [f'<row r="{r}">']
            # the common case: no text in the row needs escaping or keeps edge whitespace
            joined = _SEP.join([v for v in values if type(v) is str])
            clean = search(joined) is None and edges(joined) is None
            gap = False
            for col, value in enumerate(values):
                if value is None:
                    gap = True
                    continue
                ref = f' r="{letters[col]}{r}"' if gap else ""
                gap = False
                if clean and plain_text[col] and type(value) is str:
                    parts.append(f'<c{ref} t="inlineStr"><is><t>{value}</t></is></c>')
                else:
                    parts.append(cell(col, ref, value))
            parts.append("</row>")
            buf.append("".join(parts))
            pending += 1
            if pending >= every:
                self._flush(buf)
                self.written += pending
                if after:
                    after(pending)
                pending = 0
        self._flush(buf)
        self.written += pending
        if after and pending:
            after(pending)

    def _flush(self, buf: list[str]) -> None:
        if buf:
            self.out.put(self.sheet.write, "".join(buf).encode("utf-8"))
            buf.clear()

    # -- the rest of the package ------------------------------------------------------------
    def abort(self) -> None:
        """Stop the background thread after a failure (the file is left incomplete)."""
        self.out.queue.put(None)

    def close(self) -> None:
        """Finish the package: the last sheet, the workbook, styles, relations."""
        self.start()
        self._end_sheet()
        z = self.zip
        sheets = range(1, self.sheets + 1)
        names = [self.sheet_name if i == 1 else f"{self.sheet_name} {i}" for i in sheets]
        self.out.put(z.writestr, "xl/workbook.xml", (
            f'{_HEAD}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>'
            + "".join(f'<sheet name="{_escape(n)}" sheetId="{i}" r:id="rId{i}"/>'
                      for i, n in zip(sheets, names, strict=True))
            + "</sheets><definedNames>"
            + "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i - 1}" '
                      f"hidden=\"1\">'{_escape(n)}'!$A$1:${self.letters[-1]}${rows}"
                      "</definedName>"
                      for i, n, rows in zip(sheets, names, self.sheet_rows, strict=True))
            + "</definedNames></workbook>"))
        self.out.put(z.writestr, "xl/_rels/workbook.xml.rels", (
            f'{_HEAD}<Relationships xmlns="{_PKG}">'
            + "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                      f'Target="worksheets/sheet{i}.xml"/>' for i in sheets)
            + f'<Relationship Id="rIdStyles" Type="{_REL}/styles" Target="styles.xml"/>'
            "</Relationships>"))
        self.out.put(z.writestr, "xl/styles.xml", self._styles())
        self.out.put(z.writestr, "_rels/.rels", (
            f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
        self.out.put(z.writestr, "[Content_Types].xml", (
            f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
            'sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                      f'ContentType="{sheet_type}"/>' for i in sheets)
            + "</Types>"))
        self.out.put(z.close)
        self.out.finish()

    def _styles(self) -> str:
        by_style = sorted((style, places) for places, style in self.money_styles.items())
        time_format = TIME_FORMAT.replace('"', "&quot;")
        fmts = f'<numFmt numFmtId="164" formatCode="{time_format}"/>' + "".join(
            f'<numFmt numFmtId="{165 + i}" formatCode="'
            f'{"0." + "0" * places if places else "0"}"/>'
            for i, (_, places) in enumerate(by_style))
        xfs = ('<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
               '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
               '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" '
               'applyNumberFormat="1"/>'
               + "".join(f'<xf numFmtId="{165 + i}" fontId="0" fillId="0" borderId="0" '
                         'xfId="0" applyNumberFormat="1"/>' for i in range(len(by_style))))
        return (f'{_HEAD}<styleSheet xmlns="{_NS}">'
                f'<numFmts count="{1 + len(by_style)}">{fmts}</numFmts>'
                '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
                '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
                '<fills count="2"><fill><patternFill patternType="none"/></fill>'
                '<fill><patternFill patternType="gray125"/></fill></fills>'
                '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/>'
                '</border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" '
                f'fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="{3 + len(by_style)}">'
                f'{xfs}</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
                'builtinId="0"/></cellStyles></styleSheet>')


def stream(columns: Sequence[str], kinds: Sequence[str], widths: Sequence[int],
           rows: Iterable[Sequence[Any]], after: Callable[[int], None] | None = None,
           chunk: int = CHUNK) -> Iterator[bytes]:
    """The workbook's bytes, about ``chunk`` at a time, the first ones right away."""
    sink = _Sink()
    book = Workbook(sink, columns, kinds, widths)
    try:
        book.start()
        book.out.put(sink.flush)
        while not sink.size and book.out.error is None and book.out.thread.is_alive():
            time.sleep(0.001)  # the header is being compressed: send it the moment it is
        yield sink.take()  # the first bytes, before any row is read
        it = iter(rows)
        while batch := list(islice(it, 2000)):
            book.write_rows(batch, after)
            if sink.size >= chunk:
                yield sink.take()
        book.close()
    except BaseException:
        book.abort()
        raise
    yield sink.take()
