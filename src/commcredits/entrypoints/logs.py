"""Logging for ``commcredits serve``: plain text by default, one JSON object per line with
``COMMCREDITS_LOG_JSON=1`` (for log shippers). Nothing secret is ever logged: API keys,
card numbers and passwords never reach a log call."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(json_lines: bool) -> dict[str, object]:
    """Configure the root logger; returns a uvicorn ``log_config`` that matches."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # uvicorn's own loggers propagate to the root handler above
    return {"version": 1, "disable_existing_loggers": False,
            "loggers": {name: {"handlers": [], "propagate": True, "level": "INFO"}
                        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}}
