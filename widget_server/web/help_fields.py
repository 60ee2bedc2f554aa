"""The fields of the Help Form and its reply form: cleaning, limits and the messages people read.

Pure functions over the submitted strings; each error names the field it belongs to so the page
can mark that field (aria-invalid, aria-describedby) and link to it from the error summary.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from widget_server import tickets as rules
from widget_server.models import Ticket
from widget_server.text import multi_line, one_line

NAME_MAX = 200
EMAIL_MAX = 254
SUBJECT_MAX = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
FIELD_ORDER = ("form", "name", "email", "subject", "description", "severity")


@dataclass(frozen=True)
class FormValues:
    name: str = ""
    email: str = ""
    subject: str = ""
    description: str = ""
    severity: str = rules.DEFAULT_SEVERITY


def validate(fields: dict[str, str], max_body: int,
             severity_keys: tuple[str, ...] = rules.SEVERITY_KEYS,
             ) -> tuple[FormValues, dict[str, str]]:
    """The cleaned values (kept even when wrong, to re-render) and an error per bad field."""
    values = FormValues(
        name=one_line(fields.get("name", "")),
        email=one_line(fields.get("email", "")),
        subject=one_line(fields.get("subject", "")),
        description=multi_line(fields.get("description", "")),
        severity=fields.get("severity", ""),
    )
    errors: dict[str, str] = {}
    if not values.name:
        errors["name"] = "Enter your name"
    elif len(values.name) > NAME_MAX:
        errors["name"] = f"Your name can have at most {NAME_MAX} characters"
    if not values.email:
        errors["email"] = "Enter your email address"
    elif len(values.email) > EMAIL_MAX:
        errors["email"] = f"An email address can have at most {EMAIL_MAX} characters"
    elif not EMAIL.fullmatch(values.email):
        errors["email"] = "Enter an email address like name@example.com"
    if len(values.subject) > SUBJECT_MAX:
        errors["subject"] = (f"The subject can have at most {SUBJECT_MAX} characters; "
                             f"it has {len(values.subject)}")
    description_error = body_error(values.description, max_body, "Describe your problem")
    if description_error:
        errors["description"] = description_error
    if values.severity not in severity_keys:
        errors["severity"] = "Choose how severe the problem is"
    return values, errors


def body_error(body: str, max_body: int, when_empty: str) -> str | None:
    if not body.strip():
        return when_empty
    if len(body) > max_body:
        return f"The text can have at most {max_body} characters; it has {len(body)}"
    return None


def field_summary(errors: dict[str, str]) -> list[tuple[str | None, str]]:
    """(anchor of the field, message) for the error summary, in the order of the form."""
    anchors = {"form": None, "severity": f"severity-{rules.SEVERITY_KEYS[0]}"}
    ordered = sorted(errors, key=lambda key: FIELD_ORDER.index(key)
                     if key in FIELD_ORDER else len(FIELD_ORDER))
    return [(anchors.get(key, key), errors[key]) for key in ordered]


def clean_reply(fields: dict[str, str], max_body: int) -> tuple[str, str, str | None]:
    """The reply body, its client_msg_id (a fresh one if the form's is not a uuid) and an error."""
    body = multi_line(fields.get("body", ""))
    raw_id = fields.get("client_msg_id", "")
    try:
        client_msg_id = str(uuid.UUID(raw_id))
    except ValueError:
        client_msg_id = str(uuid.uuid4())
    return body, client_msg_id, body_error(body, max_body, "Write your reply")


def first_response_promise(ticket: Ticket, now: datetime) -> str | None:
    """What the requester is promised, told honestly once the promise is broken."""
    if ticket.first_response_at is not None:
        return f"We first replied on {rules.format_due(ticket.first_response_at)}"
    if ticket.status in {"solved", "closed"}:
        return None
    if now > ticket.first_response_due:
        return "We're late, and still on it"
    return f"We'll reply by {rules.format_due(ticket.first_response_due)}"
