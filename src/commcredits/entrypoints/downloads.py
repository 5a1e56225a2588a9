"""Report files as HTTP responses, shared by the API and the console: CSV streamed row by
row, Excel written in constant memory to a temporary file that is deleted once sent."""

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

from commcredits.services import reports as rep


def report_file(report: rep.Report, rows: Iterable[rep.Row], kind: str, name: str,
                headers: dict[str, str] | None = None,
                zip_parameters: dict[str, Any] | None = None,
                exported_at: datetime | None = None) -> Response:
    """``kind`` is ``csv``, ``xlsx`` or ``zip`` (which needs ``zip_parameters`` and
    ``exported_at``)."""
    if kind == "csv":
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(rep.csv_lines(report, rows), media_type=rep.CSV_MEDIA_TYPE,
                                 headers={**disposition, **(headers or {})})
    fd, tmp = tempfile.mkstemp(prefix="commcredits-", suffix=f".{kind}")
    os.close(fd)
    try:
        if kind == "zip":
            assert zip_parameters is not None and exported_at is not None
            rep.write_zip(Path(tmp), report, rows, zip_parameters, exported_at)
        else:
            rep.write_xlsx(Path(tmp), report, rows)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    media = rep.ZIP_MEDIA_TYPE if kind == "zip" else rep.XLSX_MEDIA_TYPE
    return FileResponse(tmp, media_type=media, filename=name, headers=headers,
                        background=BackgroundTask(os.unlink, tmp))
