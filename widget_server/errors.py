"""Errors the domain raises; the web layer makes each a JSON error, error frame or close."""

from __future__ import annotations


class WidgetError(Exception):
    """An error a client caused and can be told about: a stable code, a human message, a status."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(WidgetError):
    code = "not_found"
    status = 404


class Conflict(WidgetError):
    code = "conflict"
    status = 409


class Unprocessable(WidgetError):
    code = "invalid_input"
    status = 422


class Unauthorized(WidgetError):
    code = "unauthorized"
    status = 401


class Forbidden(WidgetError):
    code = "forbidden"
    status = 403


class InvalidAssignee(Unprocessable):
    """One answer for every assignee that may not be chosen: unknown, disabled, or an agent
    of another site (the answer never tells which, so it reveals no other site's agents)."""

    code = "invalid_assignee"

    def __init__(self) -> None:
        super().__init__("no active agent of this site has that id or email")
