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

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
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
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

TEXT, INTEGER, MONEY = "text", "integer", "money"


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
    if _NEEDS_ESCAPE.search(value):
        value = _escape(value)
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{value}</t></is></c>'


class _Sink:
    """A write-only file that hands what was written to a generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


class Workbook:
    """One worksheet (or more, past Excel's row limit) of ``columns`` with ``kinds``."""

    def __init__(self, out: IO[bytes] | _Sink, columns: Sequence[str], kinds: Sequence[str],
                 widths: Sequence[int], sheet_name: str = "Usage", level: int = 1) -> None:
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level)  # type: ignore[arg-type]
        self.columns, self.kinds, self.widths = list(columns), list(kinds), list(widths)
        self.sheet_name = sheet_name
        self.letters = [_letters(i) for i in range(len(columns))]
        self.money_styles: dict[int, int] = {}  # decimal places -> cell style index
        self.sheets = 0
        self.sheet: Any = None
        self.row = 0
        self.written = 0

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
        self.sheet = self.zip.open(info, "w", force_zip64=True)
        cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
                       for i, w in enumerate(self.widths))
        header = "".join(f'<c r="{self.letters[i]}1" s="1" t="inlineStr"><is><t>'
                         f"{_escape(name)}</t></is></c>" for i, name in enumerate(self.columns))
        self.sheet.write((
            f'{_HEAD}<worksheet xmlns="{_NS}"><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            f'</sheetView></sheetViews><cols>{cols}</cols><sheetData>'
            f'<row r="1">{header}</row>').encode())
        self.row = 1

    def _end_sheet(self) -> None:
        if self.sheet is not None:
            self.sheet.write(b"</sheetData></worksheet>")
            self.sheet.close()
            self.sheet = None

    # -- cells ----------------------------------------------------------------------------
    def _money(self, ref: str, value: str) -> str:
        if not _NUMBER.fullmatch(value) or len(Decimal(value).as_tuple().digits) > EXCEL_DIGITS:
            return _text_cell(ref, value)  # Excel would round it: keep the exact text
        places = len(value.partition(".")[2])
        style = self.money_styles.get(places)
        if style is None:
            style = self.money_styles[places] = 2 + len(self.money_styles)
        return f'<c r="{ref}" s="{style}"><v>{value}</v></c>'

    def _cell(self, col: int, ref: str, value: Any) -> str:
        kind = self.kinds[col]
        if kind == INTEGER and isinstance(value, int) and not isinstance(value, bool):
            return f'<c r="{ref}"><v>{value}</v></c>'
        if kind == MONEY and isinstance(value, str):
            return self._money(ref, value)
        return _text_cell(ref, str(value))

    def write_rows(self, rows: Iterable[Sequence[Any]],
                   after: Callable[[int], None] | None = None, every: int = 1000) -> None:
        """Write ``rows``; ``after(n)`` is called every ``every`` rows with ``n`` written."""
        letters, cell = self.letters, self._cell
        text_cols = [k == TEXT for k in self.kinds]
        buf: list[str] = []
        pending = 0
        if self.sheet is None:
            self._new_sheet()
        for values in rows:
            if self.row >= MAX_ROWS:
                self._flush(buf)
                self._new_sheet()
            self.row += 1
            r = str(self.row)
            parts = [f'<row r="{r}">']
            for col, value in enumerate(values):
                if value is None:
                    continue
                ref = letters[col] + r
                if text_cols[col] and type(value) is str:
                    parts.append(_text_cell(ref, value))
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
            self.sheet.write("".join(buf).encode("utf-8"))
            buf.clear()

    # -- the rest of the package ------------------------------------------------------------
    def close(self) -> None:
        if self.sheet is None and not self.sheets:
            self._new_sheet()
        self._end_sheet()
        z = self.zip
        sheets = range(1, self.sheets + 1)
        names = [self.sheet_name if i == 1 else f"{self.sheet_name} {i}" for i in sheets]
        z.writestr("xl/workbook.xml", (
            f'{_HEAD}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>'
            + "".join(f'<sheet name="{_escape(n)}" sheetId="{i}" r:id="rId{i}"/>'
                      for i, n in zip(sheets, names, strict=True))
            + "</sheets></workbook>"))
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'{_HEAD}<Relationships xmlns="{_PKG}">'
            + "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                      f'Target="worksheets/sheet{i}.xml"/>' for i in sheets)
            + f'<Relationship Id="rIdStyles" Type="{_REL}/styles" Target="styles.xml"/>'
            "</Relationships>"))
        z.writestr("xl/styles.xml", self._styles())
        z.writestr("_rels/.rels", (
            f'{_HEAD}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
        z.writestr("[Content_Types].xml", (
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
        z.close()

    def _styles(self) -> str:
        by_style = sorted((style, places) for places, style in self.money_styles.items())
        fmts = "".join(f'<numFmt numFmtId="{164 + i}" formatCode="'
                       f'{"0." + "0" * places if places else "0"}"/>'
                       for i, (_, places) in enumerate(by_style))
        xfs = ('<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
               '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
               + "".join(f'<xf numFmtId="{164 + i}" fontId="0" fillId="0" borderId="0" '
                         'xfId="0" applyNumberFormat="1"/>' for i in range(len(by_style))))
        return (f'{_HEAD}<styleSheet xmlns="{_NS}">'
                f'<numFmts count="{len(by_style)}">{fmts}</numFmts>'
                '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
                '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
                '<fills count="2"><fill><patternFill patternType="none"/></fill>'
                '<fill><patternFill patternType="gray125"/></fill></fills>'
                '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/>'
                '</border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" '
                f'fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="{2 + len(by_style)}">'
                f'{xfs}</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
                'builtinId="0"/></cellStyles></styleSheet>')


def stream(columns: Sequence[str], kinds: Sequence[str], widths: Sequence[int],
           rows: Iterable[Sequence[Any]], after: Callable[[int], None] | None = None,
           chunk: int = CHUNK) -> Iterator[bytes]:
    """The workbook's bytes, about ``chunk`` at a time, the first ones right away."""
    sink = _Sink()
    book = Workbook(sink, columns, kinds, widths)
    book.start()
    yield sink.take()  # the ZIP entry's header and the header row: the first byte, at once
    it = iter(rows)
    while batch := list(islice(it, 2000)):
        book.write_rows(batch, after)
        if sink.size >= chunk:
            yield sink.take()
    book.close()
    yield sink.take()
