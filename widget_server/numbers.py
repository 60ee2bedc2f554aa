"""The one way untrusted text becomes an integer: ASCII digits only, bounded.

``str.isdigit`` is true for "²" and "٣" (and ``int`` then fails or reads them), and ``int``
itself accepts "1_0", " 7", "+7" and digits of any script. Query parameters, path segments,
form fields, settings and CLI options all go through ``parse_int`` instead.
"""

from __future__ import annotations

import re

MAX_INT = 2**63 - 1  # SQLite's integers: anything larger cannot name a row
_DIGITS = re.compile(r"[0-9]{1,19}")  # 19 digits hold every 64-bit value


def parse_int(text: object, low: int = 0, high: int = MAX_INT) -> int | None:
    """The value of ``text`` when it is 1-19 ASCII digits within [low, high], else None."""
    if not isinstance(text, str) or _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_signed(text: str) -> int | None:
    """Like ``parse_int`` but with an optional leading minus sign, for settings and flags."""
    if text.startswith("-"):
        value = parse_int(text[1:], 0, MAX_INT)
        return None if value is None else -value
    return parse_int(text)
