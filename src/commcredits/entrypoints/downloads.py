"""Report files as HTTP responses, shared by the API and the console: CSV and Excel both
streamed as they are made (the first bytes leave at once), in constant memory; the
admin-center ZIP from a temporary file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import Response

from commcredits.adapters.db.replica import Source
from commcredits.services import report_formats as formats
from commcredits.services import report_zip
from commcredits.services import reports as rep


def report_file(report: rep.Report, rows: Iterable[rep.Row], kind: str, name: str,
                headers: dict[str, str] | None = None,
                zip_parameters: dict[str, Any] | None = None,
                exported_at: datetime | None = None) -> Response:
    """``kind`` is ``csv``, ``xlsx`` (both streamed) or ``zip`` (which needs
    ``zip_parameters`` and ``exported_at``; written to a temporary file first)."""
    if kind != "zip":
        body = (formats.csv_bytes(report, rows) if kind == "csv"
                else formats.xlsx_chunks(report, rows))
        media = formats.CSV_MEDIA_TYPE if kind == "csv" else formats.XLSX_MEDIA_TYPE
        return StreamingResponse(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}"', **(headers or {})})
    assert zip_parameters is not None and exported_at is not None
    fd, tmp = tempfile.mkstemp(prefix="commcredits-", suffix=".zip")
    os.close(fd)
    try:
        report_zip.write_zip(Path(tmp), report, rows, zip_parameters, exported_at)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return FileResponse(tmp, media_type=report_zip.ZIP_MEDIA_TYPE, filename=name,
                        headers=headers, background=BackgroundTask(os.unlink, tmp))


def source_headers(source: Source) -> dict[str, str]:
    """Where a report's data came from and how fresh it is."""
    headers = {"X-Data-As-Of": source.as_of_text, "X-Data-Source": source.name}
    if source.fallback:
        headers["Warning"] = '199 commcredits "read replica unavailable: served by the primary"'
    return headers
