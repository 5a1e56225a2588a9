"""Report files as HTTP responses, shared by the API and the console: CSV streamed row by
row, Excel written in constant memory to a temporary file that is deleted once sent."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import Response

from commcredits.services import reports as rep


def report_file(report: rep.Report, rows: Iterable[rep.Row], kind: str, name: str,
                headers: dict[str, str] | None = None) -> Response:
    """``kind`` is ``csv`` or ``xlsx``."""
    if kind == "csv":
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(rep.csv_lines(report, rows), media_type=rep.CSV_MEDIA_TYPE,
                                 headers={**disposition, **(headers or {})})
    fd, tmp = tempfile.mkstemp(prefix="commcredits-", suffix=".xlsx")
    os.close(fd)
    try:
        rep.write_xlsx(Path(tmp), report, rows)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return FileResponse(tmp, media_type=rep.XLSX_MEDIA_TYPE, filename=name, headers=headers,
                        background=BackgroundTask(os.unlink, tmp))
