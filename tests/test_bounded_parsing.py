"""The one integer parser and the one text cleaning, as plain functions, and the places that
read numbers from settings, CLI options and policies (servers: tests/web/test_bounded_input.py).
"""

from __future__ import annotations

import pytest

from widget_server.cli import build_parser
from widget_server.config import ConfigError, Settings
from widget_server.numbers import MAX_INT, parse_int, parse_signed
from widget_server.policy import DEFAULT_POLICY_TOML, PolicyError, parse_duration, parse_policy
from widget_server.retention import RetentionError, parse_days
from widget_server.text import multi_line, one_line

NOT_NUMBERS = ["", "²", "٣", "\uff11", "1_0", "+5", "-5", " 5", "5 ", "5\n", "0x10", "1e3", "1.0",
               "9" * 20, "9" * 5000, str(MAX_INT + 1)]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_only_ascii_digits_within_64_bits_are_numbers(text: str) -> None:
    assert parse_int(text) is None


def test_numbers_and_their_bounds() -> None:
    assert parse_int("0") == 0 and parse_int("007") == 7 and parse_int(str(MAX_INT)) == MAX_INT
    assert parse_int("5", 1, 4) is None and parse_int("4", 1, 4) == 4
    assert parse_int(None) is None and parse_int(5) is None
    assert parse_signed("-5") == -5 and parse_signed("--5") is None and parse_signed("-²") is None


@pytest.mark.parametrize("text", ["²", "1_0", "٣", "99999999999999999999"])
def test_settings_and_cli_options_read_only_ascii_digits(text: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"WIDGET_MAX_BODY_CHARS": text})
    with pytest.raises(ConfigError):
        Settings.from_env({"WIDGET_PORT": text})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "add", "--email", "a@example.com", "--tier", text])
    with pytest.raises(RetentionError):
        parse_days(text)
    assert Settings.from_env({"WIDGET_PORT": "8080"}).port == 8080


@pytest.mark.parametrize("text", ["٣h", "1_0h", "99999999999d", "9999999999999m", "²m"])
def test_policy_durations_read_only_ascii_digits_and_fit_a_timedelta(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_duration(text, "first_response")


@pytest.mark.parametrize("days", ["99999999999999", "0", "true", "2.5"])
def test_policy_auto_close_days_is_bounded(days: str) -> None:
    text = DEFAULT_POLICY_TOML.replace("auto_close_days = 7", f"auto_close_days = {days}")
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_control_characters_are_dropped_and_lines_kept_where_they_belong() -> None:
    controls = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20),
                                        *range(0x7F, 0xA0)])
    assert multi_line(f"a{controls}b\r\nc\rd\te") == "ab\nc\nd\te"
    assert one_line(f" Ann{controls}\n\t Lee ") == "Ann Lee"
    assert one_line("\u202egnp.exe \U0001F600") == "\u202egnp.exe \U0001F600"  # not controls
