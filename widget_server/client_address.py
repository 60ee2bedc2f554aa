"""The real address of a client, behind trusted reverse proxies or not.

X-Forwarded-For is written by whoever sends the request, so it is only believed when the
direct peer is a proxy the operator trusts (``WIDGET_TRUSTED_PROXIES``); then the header is
read from the right, each trusted hop skipped, and the first address no trusted proxy owns
is the client. Anything left of it could have been made up by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def parse_proxies(text: str) -> tuple[str, ...]:
    """``WIDGET_TRUSTED_PROXIES``: comma-separated addresses or CIDR networks, normalised."""
    entries = []
    for part in text.split(","):
        if part.strip():
            try:
                entries.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP address or network") from None
    return tuple(entries)


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _address(text: str) -> Address | None:
    """An address from a header or the peer; tolerates a port and IPv6 brackets."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.7:5678
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped  # one client, one key, whichever socket family it came on
    return found


def _is_trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def _forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    hops: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":  # several header lines read as one list
            hops.extend(part for part in value.decode("latin-1").split(",") if part.strip())
    return hops


def client_address(source: Mapping[str, Any] | Any, trusted: tuple[str, ...]) -> str:
    """The client's IP address as text, for an ASGI scope or a Request/WebSocket.

    With ``trusted`` empty (the default) that is always the direct peer."""
    scope: Mapping[str, Any] = getattr(source, "scope", source)
    client = scope.get("client")
    peer_text = str(client[0]) if client else ""
    peer = _address(peer_text)
    if peer is None:
        return peer_text or UNKNOWN  # a unix socket or a test client: nothing to parse
    networks = _networks(trusted) if trusted else ()
    if not _is_trusted(peer, networks):
        return str(peer)
    last_trusted = peer
    for hop in reversed(_forwarded_for(scope.get("headers") or [])):
        address = _address(hop)
        if address is None:  # garbage where a proxy should have written an address
            return str(last_trusted)
        if not _is_trusted(address, networks):
            return str(address)
        last_trusted = address
    return str(last_trusted)  # every hop is ours: the request began at a trusted host


def address_in(text: str, entries: tuple[str, ...]) -> bool:
    """Whether the address ``text`` (as ``client_address`` gives it) is in one of
    ``entries`` (parsed by ``parse_proxies``)."""
    address = _address(text)
    return address is not None and bool(entries) and _is_trusted(address, _networks(entries))
