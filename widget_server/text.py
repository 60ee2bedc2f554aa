"""The one cleaning of untrusted text at the edge: no control characters get in.

NUL, the C0 controls, DEL and the C1 controls (U+0080-U+009F, e.g. U+0085 "next line")
print as nothing or break lines in surprising places, and several tools stop at NUL. Every
way text comes in (widget frames and REST calls, the REST API, console forms, the Help Form,
the CLI) passes it through one of these two before it is checked, stored or shown:

- ``one_line`` for names, emails, subjects, titles: every control character dropped and
  runs of whitespace (line breaks too) made one space;
- ``multi_line`` for message bodies and other free text: line breaks kept (as ``\\n``),
  tabs kept, every other control character dropped.
"""

from __future__ import annotations

import re

# C0 but tab, line feed and carriage return; DEL; C1 (what unicodedata calls "Cc")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def one_line(value: str) -> str:
    """Control characters dropped, runs of whitespace (tabs, line breaks too) made one space."""
    return " ".join(_CONTROLS.sub("", value).split())


def multi_line(value: str) -> str:
    """Line breaks normalised to \\n; other control characters but tabs dropped."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", value)


def optional_line(value: str | None) -> str | None:
    """``one_line`` of a value that may be absent; None when nothing is left."""
    return (one_line(value) or None) if value is not None else None


_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control(value: str) -> bool:
    """Whether ``value`` holds any control character, tab and line breaks included (what no
    single-line value, such as a URL's path or query, may hold once decoded)."""
    return _ANY_CONTROL.search(value) is not None
