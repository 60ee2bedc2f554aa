"""``WIDGET_LOG_FORMAT``: uvicorn's plain text lines, or one JSON object per line.

In JSON every record is an object with ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
``message``, the ``request_id`` of the request or websocket being served when there is one,
and for the access lines (web/request_log.py) ``method``, ``path``, ``route``, ``status``,
``duration_ms`` and ``site``. An exception's traceback goes in ``exception``, so a line is
always one line. The redaction filters of logs.py run before a record is formatted.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from widget_server.logs import REQUEST_ID

ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms", "site")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(log_format: str, level: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config``: None keeps uvicorn's own text format."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "widget_server": {"handlers": ["default"], "level": level.upper(),
                              "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
