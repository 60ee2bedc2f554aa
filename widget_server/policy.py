"""A site's support policy: severities with targets, the coverage calendar, what pauses the
clock, auto-close. Read from TOML (the format admins edit and import), stored as that text.

    [calendar]                     # omit for 24/7
    timezone = "Europe/Prague"
    mon = ["09:00-17:00"]          # tue ... sun likewise; a missing day is closed
    holidays = ["2026-12-24"]

    pause_statuses = ["pending"]
    auto_close_days = 7
    severity_set_by = "visitor_proposes"   # or "agent_only"

    [[severity]]
    key = "critical"
    label = "Critical"
    description = "The product is down or data is at risk."
    first_response = "1h"
    next_response = "4h"           # optional: after a reopen (default: first_response)
    resolution = "2d"              # optional
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from widget_server.errors import Unprocessable
from widget_server.sla import WEEKDAYS, Calendar

# ASCII digits only (\d takes any script's), and few enough that timedelta holds them
_DURATION = re.compile(r"(?:([0-9]{1,6})d)?\s*(?:([0-9]{1,6})h)?\s*(?:([0-9]{1,8})m)?")
_INTERVAL = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
MAX_AUTO_CLOSE_DAYS = 36500
STATUSES_THAT_MAY_PAUSE = ("pending",)


class PolicyError(Unprocessable):
    code = "invalid_policy"


@dataclass(frozen=True)
class SeverityLevel:
    key: str
    label: str
    description: str
    first_response: timedelta
    next_response: timedelta | None = None
    resolution: timedelta | None = None


@dataclass(frozen=True)
class Policy:
    severities: tuple[SeverityLevel, ...]
    calendar: Calendar = field(default_factory=Calendar)
    pause_statuses: frozenset[str] = frozenset({"pending"})
    auto_close_after: timedelta = timedelta(days=7)
    visitor_proposes_severity: bool = True
    default_severity: str = "normal"

    def severity(self, key: str) -> SeverityLevel:
        for level in self.severities:
            if level.key == key:
                return level
        raise PolicyError(f"severity must be one of {', '.join(self.keys)}",
                          code="invalid_severity")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(level.key for level in self.severities)


def parse_duration(text: str, where: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise PolicyError(f"{where}: {text!r} is not a duration like '12h', '30m' or '1d 4h'")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if duration <= timedelta(0):
        raise PolicyError(f"{where}: a target must be longer than zero")
    return duration


def format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes
             else ""]
    return " ".join(part for part in parts if part) or "0m"


def _calendar(data: dict[str, Any]) -> Calendar:
    zone = str(data.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"calendar.timezone: unknown time zone {zone!r}") from None
    hours = []
    for day in WEEKDAYS:
        intervals = []
        for text in data.get(day, []):
            match = _INTERVAL.fullmatch(str(text))
            if match is None:
                raise PolicyError(f"calendar.{day}: {text!r} is not like '09:00-17:00'")
            h1, m1, h2, m2 = map(int, match.groups())
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
                raise PolicyError(f"calendar.{day}: {text!r} is not a time of day")
            opens, closes = time(h1, m1), time(0) if h2 == 24 else time(h2, m2)
            if closes != time(0) and closes <= opens:
                raise PolicyError(f"calendar.{day}: {text!r} closes before it opens")
            intervals.append((opens, closes))
        hours.append(tuple(sorted(intervals)))
    if not any(hours):
        raise PolicyError("calendar: no opening hours on any day (omit [calendar] for 24/7)")
    try:
        holidays = frozenset(date.fromisoformat(str(day)) for day in data.get("holidays", []))
    except ValueError as exc:
        raise PolicyError(f"calendar.holidays: {exc}") from None
    return Calendar(zone, tuple(hours), holidays)


def parse_policy(text: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from None
    levels = []
    for index, item in enumerate(data.get("severity", [])):
        where = f"severity[{index}]"
        if not isinstance(item, dict) or not all(
                isinstance(item.get(key), str) and item.get(key) for key in ("key", "label")):
            raise PolicyError(f"{where}: needs a key and a label")
        levels.append(SeverityLevel(
            key=item["key"], label=item["label"], description=str(item.get("description", "")),
            first_response=parse_duration(str(item.get("first_response", "")),
                                          f"{where}.first_response"),
            next_response=(parse_duration(str(item["next_response"]), f"{where}.next_response")
                           if "next_response" in item else None),
            resolution=(parse_duration(str(item["resolution"]), f"{where}.resolution")
                        if "resolution" in item else None)))
    if not levels:
        raise PolicyError("a policy needs at least one [[severity]]")
    keys = [level.key for level in levels]
    if len(set(keys)) != len(keys):
        raise PolicyError("severity keys must be unique")
    pauses = frozenset(str(status) for status in data.get("pause_statuses", ["pending"]))
    if not pauses <= set(STATUSES_THAT_MAY_PAUSE):
        raise PolicyError("pause_statuses may only contain 'pending'")
    days = data.get("auto_close_days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or \
            not 1 <= days <= MAX_AUTO_CLOSE_DAYS:
        raise PolicyError("auto_close_days must be a whole number of days, "
                          f"from 1 to {MAX_AUTO_CLOSE_DAYS}")
    setter = data.get("severity_set_by", "visitor_proposes")
    if setter not in {"visitor_proposes", "agent_only"}:
        raise PolicyError("severity_set_by must be 'visitor_proposes' or 'agent_only'")
    default = str(data.get("default_severity", "normal" if "normal" in keys else keys[0]))
    if default not in keys:
        raise PolicyError(f"default_severity {default!r} is not one of the severities")
    calendar = _calendar(data["calendar"]) if "calendar" in data else Calendar()
    return Policy(tuple(levels), calendar, pauses, timedelta(days=days),
                  setter == "visitor_proposes", default)


DEFAULT_POLICY_TOML = '''\
# The default policy: a first response within 12 hours for every severity, 24/7.
pause_statuses = ["pending"]
auto_close_days = 7
severity_set_by = "visitor_proposes"
default_severity = "normal"

[[severity]]
key = "critical"
label = "Critical"
description = "The product is down or data is at risk."
first_response = "12h"

[[severity]]
key = "high"
label = "High"
description = "A major feature is broken and there is no workaround."
first_response = "12h"

[[severity]]
key = "normal"
label = "Normal"
description = "Something does not work as expected."
first_response = "12h"

[[severity]]
key = "low"
label = "Low"
description = "A question or a minor issue."
first_response = "12h"
'''

DEFAULT_POLICY = parse_policy(DEFAULT_POLICY_TOML)


@lru_cache(maxsize=128)
def _parsed(text: str) -> Policy:
    return parse_policy(text)


def policy_from_text(text: str | None) -> Policy:
    """The policy a site stores (its TOML), or the default one when it stores none."""
    return _parsed(text) if text else DEFAULT_POLICY
