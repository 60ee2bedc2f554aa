from __future__ import annotations

from datetime import UTC, datetime, timedelta

from widget_server import tickets


def test_default_policy_promises_twelve_hours_for_every_severity() -> None:
    created = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    for key in tickets.SEVERITY_KEYS:
        assert tickets.first_response_due(created, key) == created + timedelta(hours=12)


def test_acknowledgement_names_reference_severity_and_due_time() -> None:
    text = tickets.acknowledgement("#1042", "high", datetime(2026, 11, 24, 21, 0, tzinfo=UTC))
    assert "#1042" in text and "high severity" in text and "Tue 24 Nov 21:00 UTC" in text


def test_subject_is_the_first_non_empty_line_shortened() -> None:
    assert tickets.subject_from_body("\n  Login fails  \nmore") == "Login fails"
    long = tickets.subject_from_body("x" * 500)
    assert len(long) == tickets.SUBJECT_MAX_CHARS and long.endswith("…")


def test_status_transitions() -> None:
    assert tickets.status_after_visitor_message("solved") == "open"
    assert tickets.status_after_visitor_message("pending") == "open"
    assert tickets.status_after_visitor_message("new") == "new"
    assert tickets.status_after_agent_reply("new") == "open"
    assert tickets.status_after_agent_reply("pending") == "pending"
    assert set(tickets.STATUS_LABELS) == set(tickets.STATUSES)
