"""The widget's pure modules under node's own test runner (tests/widget_js/*.test.mjs).

Without node these skip, saying so, unless WIDGET_REQUIRE_BROWSER=1 (as in CI), where a
missing node fails like a missing Chromium does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "tests" / "widget_js"


def detects_modules(version: str) -> bool:
    """Whether this node loads the widget's .js files as ES modules without being told."""
    major, minor = (int(n) for n in re.findall(r"\d+", version)[:2])
    return major >= 23 or (major == 22 and minor >= 7) or (major == 20 and minor >= 19)


def node() -> str:
    found = shutil.which("node")
    problem = "no node on this machine (apt-get install nodejs)"
    if found:
        version = subprocess.run([found, "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        if detects_modules(version):
            return found
        problem = f"node {version} is too old for the widget's unit tests (20.19, 22.7 or later)"
    if os.environ.get("WIDGET_REQUIRE_BROWSER") == "1":
        pytest.fail(f"WIDGET_REQUIRE_BROWSER=1 but {problem}")
    pytest.skip(f"{problem}; the widget's JS unit tests are skipped")


def test_the_widget_js_units_pass() -> None:
    files = sorted(str(path) for path in UNITS.glob("*.test.mjs"))
    assert files, "tests/widget_js/ has no *.test.mjs files"
    result = subprocess.run([node(), "--test", *files], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=False)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    passed = re.search(r"^# pass (\d+)$", report, re.MULTILINE)
    assert passed and int(passed.group(1)) > 0, report[-6000:]
