"""Sign-in rules without a browser: lockout growth, CSRF comparison, throttle keys."""

from __future__ import annotations

from datetime import timedelta

from widget_server.console_auth import (
    MAX_LOCKOUT,
    csrf_matches,
    lockout,
    new_csrf_token,
    throttle_keys,
)


def test_lockout_is_free_at_first_then_doubles_up_to_a_cap() -> None:
    assert [lockout(n) for n in range(3)] == [timedelta(0)] * 3
    assert [lockout(n).total_seconds() for n in range(3, 8)] == [1, 2, 4, 8, 16]
    assert lockout(40) == MAX_LOCKOUT


def test_csrf_tokens_are_random_and_compared_exactly() -> None:
    token = new_csrf_token()
    assert token != new_csrf_token() and len(token) >= 32
    assert csrf_matches(token, token)
    assert not csrf_matches(token, token[:-1])
    assert not csrf_matches(token, None)


def test_throttle_keys_ignore_case_and_store_no_plain_email() -> None:
    keys = throttle_keys(" Ana@Example.com ", "10.0.0.1")
    assert keys[0] == throttle_keys("ana@example.com", None)[0]
    assert all("ana" not in key and "10.0.0.1" not in key for key in keys)
