"""Ticket rules: statuses, severities, references, first-response targets, acknowledgements.

Pure functions over plain values; the store calls them inside its write transactions so the
rules hold the same on every backend. The full SLA engine (calendars, pauses) comes later
and will replace ``first_response_due`` without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STATUSES = ("new", "open", "pending", "solved", "closed")
STAGES = ("investigating", "replicated", "workaround")

STATUS_LABELS = {
    "new": "Received",
    "open": "In progress",
    "pending": "Waiting for your reply",
    "solved": "Solved",
    "closed": "Closed",
}

STAGE_LABELS = {
    "investigating": "We're investigating",
    "replicated": "We reproduced the problem",
    "workaround": "A workaround is available",
}


@dataclass(frozen=True)
class Severity:
    key: str
    label: str
    description: str
    first_response: timedelta


DEFAULT_SEVERITIES: tuple[Severity, ...] = (
    Severity("critical", "Critical", "The product is down or data is at risk.",
             timedelta(hours=12)),
    Severity("high", "High", "A major feature is broken and there is no workaround.",
             timedelta(hours=12)),
    Severity("normal", "Normal", "Something does not work as expected.", timedelta(hours=12)),
    Severity("low", "Low", "A question or a minor issue.", timedelta(hours=12)),
)
SEVERITY_KEYS = tuple(severity.key for severity in DEFAULT_SEVERITIES)
DEFAULT_SEVERITY = "normal"

SUBJECT_MAX_CHARS = 120


def severity(key: str) -> Severity:
    for candidate in DEFAULT_SEVERITIES:
        if candidate.key == key:
            return candidate
    raise KeyError(key)


def first_response_due(created_at: datetime, severity_key: str) -> datetime:
    """Default policy: a first response within the severity's target, counted 24/7."""
    return created_at + severity(severity_key).first_response


def format_reference(number: int, prefix: str = "") -> str:
    return f"#{prefix}{number}"


def subject_from_body(body: str) -> str:
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    if len(first_line) <= SUBJECT_MAX_CHARS:
        return first_line
    return first_line[: SUBJECT_MAX_CHARS - 1].rstrip() + "…"


def format_due(moment: datetime) -> str:
    """A promise a visitor reads at a glance: 'Thu 26 Nov 21:00 UTC'."""
    return moment.strftime("%a %d %b %H:%M UTC")


def acknowledgement(reference: str, severity_label: str, due: datetime | None) -> str:
    promise = (f" and will send a first response by {format_due(due)}" if due
               else " and will answer as soon as we can")
    return (f"Request {reference} received. We filed it with {severity_label.lower()} "
            f"severity{promise}.")


def status_after_visitor_message(status: str) -> str:
    """A visitor writing to a ticket that waits on them, or that was solved, reopens it."""
    return "open" if status in {"pending", "solved"} else status


def status_after_agent_reply(status: str) -> str:
    return "open" if status == "new" else status
