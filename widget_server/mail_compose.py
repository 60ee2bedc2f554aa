"""What a queued mail says: subject, text and HTML parts from the templates in
``templates/mail/`` (autoescaped in HTML; what visitors and agents wrote is never markup)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from widget_server import tickets as rules
from widget_server.ratings import SCORE_LABELS
from widget_server.store.mail_records import MailContext, OutboxMail, ThreadMessage

templates = Environment(
    loader=PackageLoader("widget_server", "templates/mail"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
SUBJECTS = {
    "acknowledgement": "[{reference}] We received your request: {subject}",
    "reply": "[{reference}] New reply: {subject}",
    "solved": "[{reference}] Solved: {subject}",
    "confirm": "[{reference}] Confirm your address to get replies by email",
    "transcript": "[{reference}] Transcript: {subject}",
    "alert": "[{reference}] {what}: {subject}",
}
TEST_SUBJECT = "Test mail from {site_name}"
ALERT_WHAT = {"new_ticket": "New ticket", "visitor_reply": "The visitor replied",
              "sla_at_risk": "SLA at risk", "sla_breached": "SLA breached",
              "escalated": "Escalated to your tier"}
ALERT_HEADER = "X-Widget-Alert"  # sqlite_alerts.HEADER


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str
    upto_seq: int | None


def one_line(text: str) -> str:
    """Header text on one line: a subject or a name never adds a header."""
    return " ".join(text.split())


def from_name(site_name: str, sender_name: str | None) -> str:
    """The From display name: the site's sender name set in the console, else its name."""
    return one_line(sender_name or "") or one_line(site_name)


def compose_test(site_name: str, admin: str) -> Composed:
    """The mail an admin sends from the console's outbox page to check that mail arrives."""
    values = {"site_name": site_name, "admin": admin}
    return Composed(subject=one_line(TEST_SUBJECT.format(site_name=site_name)),
                    text=templates.get_template("test.txt").render(values),
                    html=templates.get_template("test.html").render(values), upto_seq=None)


def promise(context: MailContext, now: datetime) -> str | None:
    """The first-response promise as the Help Form page words it."""
    if context.first_response_at is not None:
        return f"We first replied on {rules.format_due(context.first_response_at)}."
    if context.status in {"solved", "closed"} or context.first_response_due is None:
        return None
    if now > context.first_response_due:
        return "We're late, and still on it."
    return f"We'll reply by {rules.format_due(context.first_response_due)}."


def _author(message: ThreadMessage, visitor_name: str | None, kind: str) -> str:
    if message.author_type == "visitor":  # an alert is read by an agent, the rest by them
        return message.author_name or visitor_name or ("Visitor" if kind == "alert" else "You")
    return message.author_name or "Support"


def size_label(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def compose(mail: OutboxMail, follow_url: str, now: datetime,
            rating_url: str | None = None,
            link: Callable[[str], str] | None = None) -> Composed:
    """``rating_url``: the solved mail's signed rating link; each score adds ``?score=N``.
    ``link``: an attachment id's signed, expiring URL (none: the mail names no files)."""
    context = mail.context
    assert context is not None, "only a claimed mail is composed"
    page = context.page_url if (context.page_url or "").startswith(("https://", "http://")) \
        else None
    values: dict[str, Any] = {
        "site_name": context.site_name, "reference": context.reference,
        "subject": context.subject, "severity": context.severity_label,
        "promise": promise(context, now), "follow_url": follow_url, "page_url": page,
        "name": context.visitor_name,
        "what": ALERT_WHAT.get(mail.headers.get(ALERT_HEADER, ""), "Ticket update"),
        "ratings": [{"score": score, "label": label, "url": f"{rating_url}?score={score}"}
                    for score, label in SCORE_LABELS.items()] if rating_url else [],
        "messages": [{"author": _author(m, context.visitor_name, mail.kind), "body": m.body,
                      "when": rules.format_due(m.created_at),
                      "files": [{"name": a.name, "size": size_label(a.size), "url": link(a.id)}
                                for a in m.attachments] if link else []}
                     for m in context.messages],
    }
    subject = one_line(SUBJECTS[mail.kind].format(reference=context.reference,
                                                  subject=context.subject, what=values["what"]))
    return Composed(
        subject=subject,
        text=templates.get_template(f"{mail.kind}.txt").render(values),
        html=templates.get_template(f"{mail.kind}.html").render(values),
        upto_seq=max((m.seq for m in context.messages), default=None),
    )
