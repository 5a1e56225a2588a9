"""Report files as HTTP responses, shared by the API and the console: CSV and Excel both
streamed as they are made (the first bytes leave at once), in constant memory."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.responses import StreamingResponse
from starlette.responses import Response

from commcredits.services import reports as rep


def report_file(report: rep.Report, rows: Iterable[rep.Row], kind: str, name: str,
                headers: dict[str, str] | None = None) -> Response:
    """``kind`` is ``csv`` or ``xlsx``."""
    body = rep.csv_bytes(report, rows) if kind == "csv" else rep.xlsx_chunks(report, rows)
    media = rep.CSV_MEDIA_TYPE if kind == "csv" else rep.XLSX_MEDIA_TYPE
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', **(headers or {})})
