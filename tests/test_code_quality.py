"""ruff and mypy are part of the suite: a lint or type error fails CI like a broken test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "widget_server", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_five_hundred_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): length
        for package in ("widget_server", "bench")
        for path in (ROOT / package).rglob("*.py")
        if (length := len(path.read_text().splitlines())) > 500
    }
    assert too_long == {}


def test_domain_modules_do_not_import_the_web_framework() -> None:
    domain = ["tickets.py", "models.py", "clock.py", "errors.py", "messaging.py",
              "visitor_tokens.py", "passwords.py", "config.py"]
    offenders = [name for name in domain
                 if "starlette" in (ROOT / "widget_server" / name).read_text()]
    offenders += [str(p.relative_to(ROOT)) for p in (ROOT / "widget_server" / "realtime").rglob(
        "*.py") if "starlette" in p.read_text()]
    assert offenders == []


def test_sql_lives_only_in_the_store() -> None:
    keywords = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "widget_server").rglob("*.py")
        if "store" not in path.relative_to(ROOT / "widget_server").parts
        and any(keyword in path.read_text() for keyword in keywords)
    ]
    assert offenders == []
