"""Webhooks' pure rules (URLs, destinations, secrets, signatures, backoff) and the sender's
connection: to the address checked, with TLS verified against the URL's host name."""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from standardwebhooks import Webhook

from tests.support import free_port
from widget_server.errors import Unprocessable
from widget_server.webhook_sender import Refused, destination, post, verdict
from widget_server.webhooks import (
    EVENTS,
    GIVE_UP_AFTER,
    envelope,
    new_secret,
    new_webhook_id,
    parse_events,
    parse_url,
    refusal,
    retry_at,
    sign,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "2001:db8::1"])
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111",
                                     "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("url", "code"), [
    ("http://hooks.example.com/x", "invalid_url"), ("ftp://hooks.example.com/", "invalid_url"),
    ("https://", "invalid_url"), ("https://u:p@hooks.example.com/", "invalid_url"),
    ("https://hooks.example.com/#top", "invalid_url"), ("https://hooks.example.com/a b",
                                                        "invalid_url"),
    ("https://hooks.example.com:99999/", "invalid_url"), (12, "invalid_url"),
    ("https://" + "a" * 2000 + ".com/", "invalid_url"),
    ("https://127.0.0.1/x", "webhook_url_refused"), ("https://[::1]:8443/x",
                                                     "webhook_url_refused"),
    ("https://[::ffff:7f00:1]/x", "webhook_url_refused"),
    ("https://169.254.169.254/latest/meta-data", "webhook_url_refused")])
def test_urls_refused_at_registration(url: object, code: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        parse_url(url, allow_private=False)
    assert refused.value.code == code


def test_allow_private_lets_http_and_private_addresses_in() -> None:
    assert parse_url(" https://hooks.example.com/in?x=1 ", False) == \
        "https://hooks.example.com/in?x=1"
    assert parse_url("http://127.0.0.1:8080/hook", True) == "http://127.0.0.1:8080/hook"
    assert parse_url("https://[::1]/hook", True) == "https://[::1]/hook"


def test_events_are_known_names_each_once() -> None:
    assert parse_events(["message.created", "ticket.created"]) == ("ticket.created",
                                                                   "message.created")
    for bad in ([], ["ticket.created", "ticket.created"], ["ticket.eaten"], "ticket.created",
                [1]):
        with pytest.raises(Unprocessable):
            parse_events(bad)
    assert len(parse_events(list(EVENTS))) == len(EVENTS) == 11


def test_signatures_verify_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    webhook_id, now = new_webhook_id(), datetime.now(UTC)
    body = envelope("ticket.created", now, {"site": "s", "text": "héllo"}).encode()
    headers = sign(secret, webhook_id, now, body)
    assert headers["webhook-id"] == webhook_id.strip() and webhook_id.startswith("msg_")
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(body, headers)["data"]["text"] == "héllo"
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)
    payload = json.loads(body)
    assert payload["type"] == "ticket.created" and payload["version"] == 1


def test_the_backoff_doubles_to_twelve_hours_and_ends_after_three_days() -> None:
    now, attempts, delays = T0, 0, []
    while True:
        attempts += 1
        due = retry_at(T0, attempts, now)
        if due is None:
            break
        delays.append(due - now)
        now = due
    assert delays[:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2),
                          timedelta(minutes=4)]
    assert max(delays) == timedelta(hours=12)
    assert now - T0 <= GIVE_UP_AFTER < now - T0 + timedelta(hours=12)
    assert 15 <= attempts <= 25


def test_verdicts() -> None:
    assert verdict(200) is None and verdict(204) is None
    assert verdict(301) == "HTTP 301: redirects are not followed"
    assert verdict(410) == "HTTP 410" and verdict(503) == "HTTP 503"


@pytest.mark.anyio
async def test_a_host_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(Refused, match="loopback"):
        await destination("https://localhost/hook", allow_private=False)
    assert await destination("https://localhost/hook", allow_private=True) in {"127.0.0.1",
                                                                              "::1"}
    assert await destination("http://[::1]:9/x", allow_private=True) == "::1"
    with pytest.raises(Refused, match="does not resolve"):
        await destination("https://no-such-host.invalid/", allow_private=True)


class TlsReceiver:
    """An https server on 127.0.0.1 whose certificate names ``hooks.test`` only."""

    def __init__(self, ca: trustme.CA) -> None:
        self.port = free_port()
        self.seen: list[dict[str, Any]] = []
        self.names: list[str | None] = []  # the SNI of each TLS handshake
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.seen.append({"host": self.headers["host"]})
                self.send_response(202)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("hooks.test").configure_cert(context)
        context.sni_callback = lambda _socket, name, _context: self.names.append(name)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls() -> Iterator[tuple[TlsReceiver, ssl.SSLContext]]:
    ca = trustme.CA()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    receiver = TlsReceiver(ca)
    yield receiver, client
    receiver.stop()


@pytest.mark.anyio
async def test_https_connects_to_the_checked_address_and_verifies_the_url_s_host(
        tls: tuple[TlsReceiver, ssl.SSLContext]) -> None:
    receiver, client = tls
    # hooks.test resolves nowhere: the connection goes to the address given, while TLS and
    # the Host header use the URL's host name
    status, answer = await post(f"https://hooks.test:{receiver.port}/in", {}, b"{}",
                                "127.0.0.1", client)
    assert (status, answer) == (202, "ok")
    assert receiver.seen == [{"host": f"hooks.test:{receiver.port}"}]
    assert receiver.names == ["hooks.test"]
    with pytest.raises(Exception, match=r"(?i)certificate|hostname"):  # not its name
        await post(f"https://other.test:{receiver.port}/in", {}, b"{}", "127.0.0.1", client)
