"""Passwords given on the command line follow the console's rule (passwords.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.support import create_site, run_cli
from widget_server.passwords import WeakPassword, check_password, new_password


def agents(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT email FROM agents ORDER BY email")]


@pytest.mark.parametrize("password", ["x", "short-pw", "aaaaaaaaaaaaaaaa", "x" * 129,
                                      "line\nbreak-and-more"])
def test_the_rule_refuses_weak_passwords(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password)


def test_generated_passwords_follow_the_rule() -> None:
    for _ in range(200):
        assert check_password(new_password())
    assert check_password("correct horse battery") == "correct horse battery"


def test_agent_commands_and_init_refuse_a_one_character_password(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    init = run_cli("init", "--db", str(db), "--site-name", "Acme", "--origin",
                   "https://app.example.com", "--admin-email", "boss@example.com",
                   "--admin-password", "x", check=False)
    assert init.returncode == 1
    assert "--admin-password: a password needs at least 12 characters" in init.stderr
    assert not db.exists() or agents(db) == []  # refused before anything was made

    site = create_site(db)
    added = run_cli("agent", "add", "--db", str(db), "--email", "dana@example.com",
                    "--password", "x", "--site", site.key, check=False)
    assert added.returncode == 1
    assert "--password: a password needs at least 12 characters (this one has 1)" \
        in added.stderr
    assert agents(db) == []

    run_cli("agent", "add", "--db", str(db), "--email", "dana@example.com", "--password",
            "a long secret", "--site", site.key)
    reset = run_cli("agent", "reset-password", "--db", str(db), "--email",
                    "dana@example.com", "--password", "1", check=False)
    assert reset.returncode == 1
    assert "at least 12 characters" in reset.stderr
    generated = run_cli("agent", "reset-password", "--db", str(db), "--email",
                        "dana@example.com")
    assert "password: " in generated.stdout
