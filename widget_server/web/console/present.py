"""How the console shows things: countdowns, times, search highlights, timeline sentences.

Plain functions over plain values, so the pages stay thin and the wording is testable.
Everything returned here is text; the templates escape it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from widget_server.clock import isoformat, parse_iso
from widget_server.models import Message, Site, Ticket
from widget_server.policy import policy_from_text

HIGHLIGHT_START, HIGHLIGHT_END = "\x02", "\x03"

# Agents read the working names; visitors see the labels of ``widget_server.tickets``.
STATUS_LABELS = {"new": "New", "open": "Open", "pending": "Pending (waiting on the visitor)",
                 "solved": "Solved", "closed": "Closed"}
STAGE_LABELS = {"investigating": "Investigating", "replicated": "Replicated",
                "workaround": "Workaround provided"}


def status_label(key: str) -> str:
    return STATUS_LABELS.get(key, key)


def stage_label(key: str | None) -> str:
    return STAGE_LABELS.get(key, key) if key else "Not set"


def duration(seconds: float) -> str:
    """'3 h 20 min', '2 d 4 h', '12 min', 'less than a minute'."""
    minutes = int(abs(seconds) // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min" if mins else "less than a minute"


def countdown(due: datetime, now: datetime) -> str:
    """'in 3 h 20 min' or 'overdue by 12 min' (console.js keeps the same wording)."""
    seconds = (due - now).total_seconds()
    return f"in {duration(seconds)}" if seconds > 0 else f"overdue by {duration(seconds)}"


@dataclass(frozen=True)
class Due:
    """The ticket's running response clock as the console shows it."""

    label: str  # "First response" or "Next response"
    iso: str | None  # the due instant while the clock runs
    text: str  # "in 3 h 20 min", "overdue by 5 min", "paused", "met"
    overdue: bool
    at_risk: bool = False


def response_due(ticket: Ticket, now: datetime) -> Due:
    label = "Next response" if ticket.sla_kind == "next_response" else "First response"
    if ticket.sla_due is not None:
        overdue = ticket.breached or ticket.sla_due <= now
        return Due(label, isoformat(ticket.sla_due), countdown(ticket.sla_due, now), overdue,
                   ticket.at_risk)
    if ticket.sla_paused:
        return Due(label, None, "paused (waiting on the visitor)", ticket.breached)
    if ticket.status in {"solved", "closed"} or ticket.first_response_at is not None:
        return Due(label, None, "breached earlier" if ticket.breached else "met",
                   ticket.breached)
    return Due(label, None, "no target", False)


def when(moment: datetime) -> str:
    return moment.strftime("%d %b %Y, %H:%M UTC")


def highlight(snippet: str) -> list[tuple[str, bool]]:
    """Split an FTS snippet at its \\x02 … \\x03 markers into (text, highlighted) parts."""
    parts: list[tuple[str, bool]] = []
    current: list[str] = []
    marked = False
    for char in snippet:
        if char in (HIGHLIGHT_START, HIGHLIGHT_END):
            if current:
                parts.append(("".join(current), marked))
                current = []
            marked = char == HIGHLIGHT_START
        else:
            current.append(char)
    if current:
        parts.append(("".join(current), marked))
    return parts


def web_url(url: str | None) -> str | None:
    """The URL if it is plain http(s); anything else (javascript:, data:) is shown as text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in {"http", "https"} else None


def file_size(size: int) -> str:
    """Bytes as people read them; the same words as console-attach.js and the widget."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def files(message: Message) -> list[dict[str, object]]:
    """A message's attachments as the ticket view lists them: images previewed, the others
    as download links. Their URL is the one every message shape names (/attachments/ID)."""
    return [{"url": f"/attachments/{a.id}", "name": a.name, "size": file_size(a.size),
             "image": a.content_type.startswith("image/")}
            for a in message.attachments]


def author_name(message: Message, visitor_name: str | None = None) -> str:
    if message.author.type == "system":
        return "System"
    if message.author.type == "visitor":
        return message.author.name or visitor_name or "Visitor"
    return message.author.name or "Agent"


def tier_name(names: tuple[str, ...], tier: int) -> str:
    return names[tier - 1] if 1 <= tier <= len(names) else f"Tier {tier}"


def severity_labels(*sites: Site) -> dict[str, str]:
    """Severity key -> label from the sites' policies, in policy order (the first site wins)."""
    labels: dict[str, str] = {}
    for site in sites:
        for level in policy_from_text(site.policy).severities:
            labels.setdefault(level.key, level.label)
    return labels


def severity_label(key: str, labels: dict[str, str]) -> str:
    return labels.get(key, key)  # a key a later policy dropped is still shown


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    text: str


def timeline(events: list[dict[str, object]], agents: dict[str, str], site: Site,
             visitor: str) -> list[TimelineEntry]:
    """The ticket's events as sentences people read."""
    entries = []
    for event in events:
        actor = event.get("actor")
        actor_type = actor.get("type") if isinstance(actor, dict) else None
        actor_id = str(actor.get("id")) if isinstance(actor, dict) else ""
        who = {"agent": agents.get(actor_id, "An agent"), "visitor": visitor}.get(
            str(actor_type), "System")
        data = event.get("data")
        created = event.get("created_at")
        entries.append(TimelineEntry(
            parse_iso(created) if isinstance(created, str) else datetime.min,
            who, describe(str(event.get("type")), data if isinstance(data, dict) else {},
                          agents, site.tier_names, severity_labels(site))))
    return entries


def describe(kind: str, data: dict[str, object], agents: dict[str, str],
             tier_names: tuple[str, ...], severities: dict[str, str]) -> str:
    def label(labels: dict[str, str], value: object) -> str:
        return labels.get(str(value), str(value)) if value is not None else "not set"

    def tier(value: object) -> str:
        return tier_name(tier_names, value) if isinstance(value, int) else str(value)

    if kind == "created":
        if "split_from" in data:
            return f"Created by splitting #{data['split_from']}"
        channel = str(data.get("channel", "widget"))
        via = "email" if channel == "email" else f"the {channel}"
        return (f"Created via {via} with "
                f"{severity_label(str(data.get('severity')), severities).lower()} severity")
    if kind == "acknowledged":
        return "Receipt acknowledged to the visitor"
    if kind == "first_response":
        return "First response sent"
    if kind == "next_response":
        return "Reply sent (next response)"
    if kind == "internal_note":
        return "Internal note added"
    if kind == "status_changed":
        return (f"Status changed from {label(STATUS_LABELS, data.get('from'))} "
                f"to {label(STATUS_LABELS, data.get('to'))}")
    if kind == "stage_changed":
        return (f"Stage changed from {label(STAGE_LABELS, data.get('from'))} "
                f"to {label(STAGE_LABELS, data.get('to'))}")
    if kind == "severity_changed":
        return (f"Severity changed from {severity_label(str(data.get('from')), severities)} "
                f"to {severity_label(str(data.get('to')), severities)}")
    if kind == "assignee_id_changed":
        after = data.get("to")
        if after is None:
            return "Unassigned"
        return f"Assigned to {agents.get(str(after), 'agent ' + str(after))}"
    if kind == "split":
        return f"Messages split off into #{data.get('into')}"
    if kind == "merged":
        return f"Merged into #{data.get('into')}"
    if kind == "merged_from":
        return f"#{data.get('from')} was merged into this ticket"
    if kind in {"escalated", "returned"}:
        verb = "Escalated" if kind == "escalated" else "Returned"
        return (f"{verb} from {tier(data.get('from'))} to {tier(data.get('to'))}. "
                f"Reason: {data.get('reason', '(erased)')}")
    if kind == "follow_up_of" and data.get("via") == "widget":
        return f"A follow-up from the widget to the closed #{data.get('number')}"
    if kind == "followed_up_by" and data.get("via") == "widget":
        return f"Followed up from the widget after closing: #{data.get('number')}"
    if kind == "follow_up_of":
        return f"Opened by an answer by mail to the closed #{data.get('number')}"
    if kind == "followed_up_by":
        return f"Answered by mail after closing: follow-up #{data.get('number')}"
    if kind == "rating":
        via = " by email" if data.get("channel") == "email" else ""
        if "from" in data:
            return f"Rating changed{via} from {data.get('from')} to {data.get('score')} out of 5"
        return f"Rated {data.get('score')} out of 5{via}"
    if kind == "erased":
        why = "retention period" if data.get("by") == "retention" else "erasure request"
        return f"Conversation and visitor details erased ({why})"
    return kind.replace("_", " ").capitalize()
