"""Origins a site allows: parsed strictly and normalised the way browsers send them.

Shared by ``widget-server init`` and the console's admin pages; no web framework here.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def parse_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, without a default port or a trailing slash.

    Raises ``ValueError`` for anything else: other schemes, paths, queries, fragments,
    user names, wildcards, bad ports.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an origin like https://app.example.com") from None
    if (parts.scheme.lower() not in DEFAULT_PORTS or not parts.netloc
            or any(char.isspace() for char in text) or "@" in parts.netloc
            or parts.path not in {"", "/"} or "?" in text or "#" in text):
        raise ValueError(f"{value!r} is not an origin like https://app.example.com")
    scheme = parts.scheme.lower()
    try:
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        raise ValueError(f"{value!r} has a bad host name or port") from None
    if port == 0:
        raise ValueError(f"{value!r} has a bad port")
    if ":" in host:  # an IPv6 address, kept in brackets
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise ValueError(f"{value!r} has a bad IPv6 address") from None
    elif not _HOST.fullmatch(host):
        raise ValueError(f"{value!r} has a bad host name")
    if port is not None and port != DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"
