"""client_address(): X-Forwarded-For is believed only from trusted proxies, read from the right."""

from __future__ import annotations

from typing import Any

import pytest

from widget_server.client_address import client_address, parse_proxies
from widget_server.config import ConfigError, Settings


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 51234) if peer else None,
            "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address(scope("198.51.100.7", "203.0.113.1"), ()) == "198.51.100.7"
    assert client_address(scope("127.0.0.1", "203.0.113.1"), ()) == "127.0.0.1"


def test_an_untrusted_peer_cannot_claim_an_address() -> None:
    trusted = parse_proxies("10.0.0.0/8")
    assert client_address(scope("198.51.100.7", "203.0.113.1"), trusted) == "198.51.100.7"


def test_a_trusted_peer_names_the_client_to_its_left() -> None:
    trusted = parse_proxies("127.0.0.1")
    assert client_address(scope("127.0.0.1", "203.0.113.1"), trusted) == "203.0.113.1"


def test_the_chain_is_read_from_the_right_skipping_trusted_hops() -> None:
    trusted = parse_proxies("127.0.0.1, 10.0.0.0/8")
    # the client made up "1.2.3.4"; our proxies appended 203.0.113.9 and 10.1.1.1
    chain = scope("127.0.0.1", "1.2.3.4, 203.0.113.9", "10.1.1.1")
    assert client_address(chain, trusted) == "203.0.113.9"


def test_when_every_hop_is_trusted_the_first_one_is_the_client() -> None:
    trusted = parse_proxies("10.0.0.0/8,127.0.0.1")
    assert client_address(scope("127.0.0.1", "10.0.0.5, 10.0.0.6"), trusted) == "10.0.0.5"
    assert client_address(scope("127.0.0.1"), trusted) == "127.0.0.1"  # no header at all


def test_garbage_in_the_header_stops_at_the_last_trusted_hop() -> None:
    trusted = parse_proxies("127.0.0.1")
    assert client_address(scope("127.0.0.1", "<script>"), trusted) == "127.0.0.1"
    assert client_address(scope("127.0.0.1", "203.0.113.1, unknown"), trusted) == "127.0.0.1"


def test_ports_brackets_and_mapped_addresses_are_normalised() -> None:
    trusted = parse_proxies("127.0.0.1,::1")
    assert client_address(scope("127.0.0.1", "203.0.113.1:4711"), trusted) == "203.0.113.1"
    assert client_address(scope("::1", "[2001:db8::1]:443"), trusted) == "2001:db8::1"
    assert client_address(scope("::ffff:198.51.100.7"), ()) == "198.51.100.7"


def test_objects_with_a_scope_and_missing_peers() -> None:
    class Request:
        def __init__(self) -> None:
            self.scope = {"client": ("192.0.2.1", 1), "headers": []}

    assert client_address(Request(), ()) == "192.0.2.1"
    assert client_address(scope(None), ()) == "unknown"
    assert client_address({"client": ("testclient", 50000)}, ()) == "testclient"


def test_the_setting_parses_and_names_bad_entries() -> None:
    settings = Settings.from_env({"WIDGET_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8 ,::1 "})
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"WIDGET_TRUSTED_PROXIES.*'proxy\.local'"):
        Settings.from_env({"WIDGET_TRUSTED_PROXIES": "127.0.0.1,proxy.local"})
