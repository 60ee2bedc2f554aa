"""Logging rules: no secret or capability reaches a log line.

The request lines uvicorn logs (the access log, and ``WebSocket PATH [accepted]`` on its
error logger) carry the path and the query string as the client sent them. Two things in
them may be secrets: the Help Form's follow links (``/help/requests/TOKEN``, a bearer
capability for the whole request) and any query value, since a client may put a token or a
password wherever it likes. Follow-link tokens are replaced by ``[redacted]``, and so is
every query value except those of the few parameters known to be harmless (a site key is
public, as are paging and filters); the names stay, so a line still says what was asked.

At debug level uvicorn's websockets library also logs the handshake's headers and the
frames: credentials headers (``Cookie``, ``Authorization``) lose their values, and a
frame is logged as its kind and size only (its text may hold a hello's token, a user hash or
a visitor's message; websockets shortens it in the middle, so no pattern finds them all).
JSON fields that carry a secret lose their values wherever else they show.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

from websockets.exceptions import InvalidState
from websockets.frames import Frame

_FOLLOW_LINK = re.compile(r"(/help/requests/)[^/?#\s\"]+")
_QUERY = re.compile(r"\?[^\s\"#']*")
_JSON_SECRET = re.compile(
    r"(\"(?:token|hash|password|secret|identity_secret|access_token|form_token|login_token|"
    r"csrf)\"\s*:\s*\")[^\"]*")
SECRET_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
_HEADER_LINES = frozenset({"< %s: %s", "> %s: %s"})
PUBLIC_PARAMS = frozenset({"site", "limit", "before", "status", "severity", "days", "page",
                           "sent"})
REDACTED = "[redacted]"
# what a log line knows of the request being served (web/request_log.py sets them)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
SITE_ID: ContextVar[int | None] = ContextVar("site_id", default=None)


def note_site(site_id: int) -> None:
    """The site the request being served is about, for its log line."""
    SITE_ID.set(site_id)


def _query(match: re.Match[str]) -> str:
    parts = []
    for pair in match.group(0)[1:].split("&"):
        name, equals, _ = pair.partition("=")
        keep = name in PUBLIC_PARAMS or not equals
        parts.append(pair if keep else f"{name}={REDACTED}")
    return "?" + "&".join(parts)


def redact(text: str) -> str:
    """``text`` (a path, a request line) without follow-link tokens or private query values."""
    text = _FOLLOW_LINK.sub(r"\1" + REDACTED, text)
    return _JSON_SECRET.sub(r"\1" + REDACTED, _QUERY.sub(_query, text))


def _safe(arg: object) -> object:
    if isinstance(arg, (int, float)):  # numbers stay numbers, for %d
        return arg
    if isinstance(arg, Frame):
        return f"{arg.opcode.name} [{len(arg.data)} bytes]"
    return redact(str(arg))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            if record.msg in _HEADER_LINES and len(args) == 2 \
                    and str(args[0]).lower() in SECRET_HEADERS:
                args = (args[0], REDACTED)
            record.args = tuple(_safe(arg) for arg in args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class ClientFaults(logging.Filter):
    """What a client got wrong is not our error. uvicorn logs a text frame in invalid UTF-8
    as an ERROR with a traceback, though it answers it rightly (close 1007); when the
    client's close comes in the same read, its answer finds the connection closing already
    and the loop logs a "Fatal error on transport" (websockets' InvalidState) as it drops
    the connection, which is all there is left to do. Both are logged at info, without the
    traceback, so nobody can fill the error log by sending bad bytes."""

    MESSAGES = frozenset({"Invalid UTF-8 sequence received from client."})

    def _client_fault(self, record: logging.LogRecord) -> bool:
        if record.msg in self.MESSAGES:
            return True
        error = record.exc_info[1] if record.exc_info else None
        return isinstance(record.msg, str) and record.msg.startswith("Fatal error on transport") \
            and isinstance(error, InvalidState)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and self._client_fault(record):
            if isinstance(record.msg, str):
                record.msg = record.msg.splitlines()[0]  # the transport's repr stays out
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


RedactPrivateLinks = RedactSecrets  # the name this filter had when it covered links only

LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_private_links() -> None:
    """Install the filter on uvicorn's loggers (a logger's filters see only the records
    logged on it; ours call ``redact`` on what they log of a request)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
    for name in ("uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientFaults) for f in logger.filters):
            logger.addFilter(ClientFaults())
