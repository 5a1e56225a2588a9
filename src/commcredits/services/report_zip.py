"""The admin center's "Export to Excel" as a file: a ZIP holding ``PSTN.calls.<UTC date>.csv``
(or ``SMS.messages.<UTC date>.csv``) — the report's CSV — and ``parameters.json`` with the
report, tenant, period and filters, so scripts written for Microsoft's export work unchanged.
The date is the export's UTC date. Written a row at a time (constant memory).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commcredits.services.report_formats import csv_lines
from commcredits.services.reports import Period, Report, Row

ZIP_MEDIA_TYPE = "application/zip"


def export_parameters(report: Report, tenant_id: str, period: Period,
                      exported_at: datetime) -> dict[str, Any]:
    """What ``parameters.json`` in a ZIP export says: the report, period and filters."""
    return {"report": report.name, "tenantId": tenant_id,
            "startDate": period.first.isoformat(), "endDate": period.last.isoformat(),
            "days": period.days, "timeZone": "UTC", "filters": {},
            "exportedAt": exported_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "columns": list(report.columns)}


def zip_member(report: Report, exported_at: datetime) -> str:
    return f"{report.export_name}.{exported_at.astimezone(UTC).date().isoformat()}.csv"


def write_zip(path: Path, report: Report, rows_: Iterable[Row], parameters: dict[str, Any],
              exported_at: datetime, progress: Callable[[], None] | None = None) -> int:
    """The admin center's "Export to Excel": a ZIP holding the CSV and ``parameters.json``,
    written a row at a time. Returns the number of data rows."""
    n = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(zip_member(report, exported_at), "w", force_zip64=True) as raw:
            lines = csv_lines(report, rows_)
            raw.write(next(lines).encode("utf-8"))
            for line in lines:
                raw.write(line.encode("utf-8"))
                n += 1
                if progress:
                    progress()
        zf.writestr("parameters.json", json.dumps(parameters, indent=2))
    return n
