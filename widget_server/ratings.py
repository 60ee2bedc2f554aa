"""Satisfaction ratings (CSAT) as pure rules: the score, the comment, how long a rating may
change, and the report per site, agent, severity and week (docs/console.md, "Satisfaction").

A rating belongs to one ticket and is given by the visitor who owns it, once the ticket is
solved or closed; it may change for ``CHANGE_WINDOW`` after it was first given. The report
credits the agent the ticket was assigned to when the visitor rated (kept in the rating, so
a later reassignment of a closed ticket moves nothing), and counts a rating in the week
(Monday to Sunday, UTC) it was first given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from widget_server.clock import isoformat
from widget_server.errors import Unprocessable
from widget_server.text import multi_line

SCORES = range(1, 6)
COMMENT_MAX = 1000  # characters; the ratings table checks it too
CHANGE_WINDOW = timedelta(days=7)
RATEABLE_STATUSES = frozenset({"solved", "closed"})
SCORE_LABELS = {1: "Very bad", 2: "Bad", 3: "OK", 4: "Good", 5: "Very good"}
# a cell a spreadsheet would run as a formula starts with one of these (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Rating:
    ticket_id: int
    score: int
    comment: str | None
    channel: str  # "widget" or "email": where it was last given
    created_at: datetime  # when first given
    updated_at: datetime
    agent_id: int | None = None  # the assignee when the visitor rated

    @property
    def changeable_until(self) -> datetime:
        return self.created_at + CHANGE_WINDOW

    def as_json(self) -> dict[str, Any]:
        return {"score": self.score, "comment": self.comment, "channel": self.channel,
                "created_at": isoformat(self.created_at),
                "updated_at": isoformat(self.updated_at),
                "changeable_until": isoformat(self.changeable_until)}


@dataclass(frozen=True)
class RatingRow:
    """One rating as the report reads it."""

    number: int
    reference: str
    severity: str
    agent_id: int | None
    agent_name: str | None
    score: int
    comment: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Group:
    """The ratings of one site, agent, severity and week."""

    week: date  # its Monday
    agent: str  # the agent's name, or "Unassigned"
    severity: str
    count: int
    satisfied: int  # scores of 4 and 5
    average: float

    @property
    def csat(self) -> float:
        """The share of satisfied ratings, the usual CSAT figure."""
        return self.satisfied / self.count


def parse_score(value: object) -> int:
    """A score from JSON: an integer from 1 to 5; 422 ``invalid_score`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
        raise Unprocessable("score must be a whole number from 1 to 5", code="invalid_score")
    return value


def parse_form_score(value: object) -> int:
    """A score from a form field: one digit from 1 to 5."""
    return parse_score(int(value) if value in {str(score) for score in SCORES} else None)


def parse_comment(value: object) -> str | None:
    """The comment, cleaned (text.py); None for none. 422 ``invalid_comment`` if too long."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unprocessable("comment must be a string or null", code="invalid_comment")
    cleaned = multi_line(value).strip()
    if len(cleaned) > COMMENT_MAX:
        raise Unprocessable(f"comment must be at most {COMMENT_MAX} characters",
                            code="invalid_comment")
    return cleaned or None


def week_of(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def group(rows: Iterable[RatingRow]) -> list[Group]:
    """The report's rows: newest week first, then agent and severity."""
    buckets: dict[tuple[date, str, str], list[int]] = {}
    for row in rows:
        key = (week_of(row.created_at), row.agent_name or "Unassigned", row.severity)
        buckets.setdefault(key, []).append(row.score)
    return [Group(week, agent, severity, len(scores), sum(1 for s in scores if s >= 4),
                  round(sum(scores) / len(scores), 2))
            for (week, agent, severity), scores in sorted(
                buckets.items(), key=lambda item: (-item[0][0].toordinal(), item[0][1:]))]


def summary(rows: list[RatingRow]) -> dict[str, Any]:
    count = len(rows)
    satisfied = sum(1 for row in rows if row.score >= 4)
    return {"count": count, "satisfied": satisfied,
            "csat": round(satisfied / count, 4) if count else None,
            "average": round(sum(row.score for row in rows) / count, 2) if count else None,
            "scores": {str(score): sum(1 for row in rows if row.score == score)
                       for score in SCORES}}


def report_json(site_key: str, since: date, rows: list[RatingRow]) -> dict[str, Any]:
    """What ``GET /api/v1/reports/csat`` answers; the console's CSV has the same groups."""
    return {
        "site": site_key, "since": since.isoformat(), **summary(rows),
        "groups": [{"week": g.week.isoformat(), "agent": g.agent, "severity": g.severity,
                    "count": g.count, "satisfied": g.satisfied, "csat": round(g.csat, 4),
                    "average": g.average} for g in group(rows)],
        "ratings": [{"ticket": row.number, "reference": row.reference,
                     "severity": row.severity, "agent_id": row.agent_id,
                     "agent": row.agent_name, "score": row.score, "comment": row.comment,
                     "created_at": isoformat(row.created_at),
                     "updated_at": isoformat(row.updated_at)} for row in rows],
    }


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs (comments are visitors' words)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_rows(rows: list[RatingRow]) -> list[list[str]]:
    """The CSV download: the groups, then every rating with its comment."""
    found = [["kind", "week", "agent", "severity", "count", "satisfied", "csat", "average",
              "ticket", "score", "comment", "rated_at"]]
    found += [["group", g.week.isoformat(), csv_cell(g.agent), csv_cell(g.severity),
               str(g.count), str(g.satisfied), f"{g.csat:.4f}", f"{g.average:.2f}", "", "",
               "", ""] for g in group(rows)]
    found += [["rating", week_of(row.created_at).isoformat(),
               csv_cell(row.agent_name or "Unassigned"), csv_cell(row.severity), "", "", "",
               "", row.reference, str(row.score), csv_cell(row.comment),
               isoformat(row.created_at)] for row in rows]
    return found
