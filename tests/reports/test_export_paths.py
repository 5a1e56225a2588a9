"""The database-formatted export (PostgreSQL: a server-side cursor, CSV from ``COPY``) gives
exactly the rows and bytes of the Python rendering, awkward values included; on SQLite both
sides are the Python rendering."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from commcredits.adapters import xlsx
from commcredits.adapters.db import schema
from commcredits.services import report_formats as formats
from commcredits.services import reports as rep

ODD = ["", "plain", 'with "quotes", and a comma', "two\nlines", "cr\r\nlf", " padded ",
       "ünïcødé ✓", None]
# formula starts (neutralised by both renderings alike), numbers and E.164 numbers (kept)
HOSTILE = ["=1+2", "@SUM(A1)", "-2+3", "+cmd", "\t=1", "\r=1", "'quoted", "+14255550100",
           "-12.50", "+", None]


def _records(uow: Any, tid: str, values: list[str | None] = ODD) -> None:
    start = datetime(2030, 3, 10, 12, 0, 0, tzinfo=UTC)
    # records of a user with an Entra ID object id, of one without, and of nobody (None)
    for user_id, guid in (("usr_guid", "0f9e8d7c-6b5a-4948-a7b6-c5d4e3f2a1b0"),
                          ("usr_plain", None)):
        uow.conn.execute(schema.users.insert().values(
            id=user_id, tenant_id=tid, upn=f"{user_id}@contoso.com", display_name=user_id,
            usage_location="US", aad_object_id=guid, created_at=start))
    for i, odd in enumerate(values * 2):
        at = start + timedelta(seconds=i // 3, microseconds=999_999 * (i % 2))
        kind = "call" if i < len(values) else "sms"
        uow.charging.add_usage(
            id=f"use_{i:03d}", tenant_id=tid, kind=kind, ref=f"ref-{i}", conference_id=odd,
            user_location="US", user_id=(None, "usr_guid", "usr_plain")[i % 3], upn=odd,
            display_name=odd, caller_id="+1425",
            call_type="user_out" if kind == "call" else "sms_out", number_type="geographic",
            scope=None if odd is None else odd[:15], destination=odd, destination_number="+44",
            start_time=at,
            end_time=at + timedelta(seconds=61), duration_s=61,
            segments=None if i % 2 else 3, connection_fee=Decimal("0.01") * (i % 2),
            charge=Decimal("1234567.89") * i, currency=("USD", "JPY", "BHD")[i % 3],
            capability="MCOPSTNPP",
            funding="credits", included_minutes=0, credits_charge=Decimal(0),
            overage_charge=Decimal(0), uncollected=Decimal(0), lots="[]")


@pytest.fixture
def odd_tenant(api: Any) -> str:
    tid: str = api.tenant("US", "legacy")
    with api.rt.db.uow() as uow:
        _records(uow, tid)
        uow.commit()
    return tid


@pytest.fixture
def hostile_tenant(api: Any) -> str:
    tid: str = api.tenant("US", "legacy")
    with api.rt.db.uow() as uow:
        _records(uow, tid, HOSTILE)
        uow.commit()
    return tid


def test_database_rows_and_csv_equal_the_python_rendering(api, odd_tenant):
    _rows_and_csv_agree(api, odd_tenant, ODD)


def test_formula_cells_are_neutralised_alike_by_database_and_python(api, hostile_tenant):
    expected = _rows_and_csv_agree(api, hostile_tenant, HOSTILE)
    text = expected.decode("utf-8")
    for cell in ("'=1+2", "'@SUM(A1)", "'-2+3", "'+cmd", ",'\t=1,", "\"'\r=1\"",
                 ",'quoted,", ",+14255550100,", ",-12.50,", ",'+,"):
        assert cell in text, cell
    assert ",=1+2" not in text and ",@SUM" not in text


def _rows_and_csv_agree(api: Any, tid: str, values: list[str | None]) -> bytes:
    db = api.rt.db
    period = rep.parse_period(datetime(2030, 3, 20).date(), from_="2030-03-01")
    for report in (rep.PSTN, rep.SMS):
        with db.uow() as uow:
            reference = [report.row(r) for r in uow.charging.usage(
                tid, report.kind, period.start, period.end)]
        assert len(reference) == len(values)
        aad = report.columns.index("AAD ObjectId")
        assert {r[aad] for r in reference} == {None, "0f9e8d7c-6b5a-4948-a7b6-c5d4e3f2a1b0"}
        assert list(rep.stream(db, report, tid, period)) == reference
        expected = "".join(formats.csv_lines(report, reference)).encode("utf-8")
        assert b"".join(formats.csv_bytes(report, rep.stream(db, report, tid, period))) == expected
        assert b"".join(formats.csv_bytes(report, iter(reference))) == expected
    return expected


def test_streamed_xlsx_holds_the_rows_and_starts_at_once(api, odd_tenant, monkeypatch):
    tid, db = odd_tenant, api.rt.db
    period = rep.parse_period(datetime(2030, 3, 20).date(), from_="2030-03-01")
    reference = list(rep.stream(db, rep.PSTN, tid, period))
    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)  # 4 data rows per sheet
    chunks = formats.xlsx_chunks(rep.PSTN, rep.stream(db, rep.PSTN, tid, period))
    first = next(chunks)
    assert first.startswith(b"PK")  # sent before any row is read
    book = openpyxl.load_workbook(io.BytesIO(first + b"".join(chunks)))
    assert [ws.title for ws in book.worksheets] == ["Usage", "Usage 2"]
    cells = [row for ws in book.worksheets for row in ws.iter_rows(min_row=2, values_only=True)]
    assert len(cells) == len(reference)
    for got, want in zip(cells, reference, strict=True):
        for value, expected, column in zip(got, want, rep.PSTN.columns, strict=True):
            if column in rep.PSTN.money:
                assert str(Decimal(str(value)).quantize(Decimal(expected))) == expected
            elif column in rep.PSTN.times:  # a real Excel date-time, UTC
                assert value == datetime.fromisoformat(expected.rstrip("Z")), column
            else:
                assert value == expected, column
    charge = book.worksheets[0].cell(2, rep.PSTN.columns.index("Charge") + 1)  # USD
    assert charge.data_type == "n" and charge.number_format == "0.00"


def test_xlsx_escapes_what_xml_cannot_hold(tmp_path):
    row = ("a & b < c > d", "tab\tend", "ctl\x01x", "  lead", None, "0.5", 7)
    path = tmp_path / "odd.xlsx"
    with path.open("wb") as fh:
        for part in xlsx.stream(["t1", "t2", "t3", "t4", "t5", "m", "n"],
                                [xlsx.TEXT] * 5 + [xlsx.MONEY, xlsx.INTEGER], [12] * 7, [row]):
            fh.write(part)
    got = next(openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2,
                                                                     values_only=True))
    assert got[:2] == ("a & b < c > d", "tab\tend")
    assert got[2] in {"ctl\x01x", "ctl_x0001_x"}  # Excel's escape for a control character
    assert got[3:] == ("  lead", None, 0.5, 7)
