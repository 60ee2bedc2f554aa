"""Logging rules: private links (Help Form follow tokens) never reach the access log."""

from __future__ import annotations

import logging
import re

_PRIVATE = re.compile(r"(/help/requests/)[^/?\s\"]+")


class RedactPrivateLinks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _PRIVATE.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _PRIVATE.sub(r"\1[redacted]", record.msg)
        return True


def redact_private_links() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactPrivateLinks())
