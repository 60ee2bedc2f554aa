"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for mail tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port

WAIT = 20.0  # generous: the suite may run beside other load


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        answer = self.sink.refuse.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.held = self.sink.hold
        while self.sink.hold:  # the whole mail is here; the answer waits until released
            await asyncio.sleep(0.01)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.received.append(message)
        return "250 Message accepted for delivery"


class MailSink:
    """``start()``/``stop()`` may be called again: the port stays the same, so a server
    pointed at it sees the mail server go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # recipient -> the answer to RCPT TO
        self.hold = False  # True: keep the answer to the next mails until set False again
        self.held = False  # a mail arrived while holding
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if address in str(m["To"])]

    def wait_for(self, address: str, count: int = 1) -> list[EmailMessage]:
        """The mails to ``address`` once there are ``count`` of them."""
        wait_until(lambda: len(self.to(address)) >= count,
                   f"{count} mail(s) to {address}; got {len(self.to(address))}")
        return self.to(address)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a condition with a deadline


def text_of(message: EmailMessage) -> tuple[str, str]:
    """The plain and the HTML part of a mail."""
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return str(plain.get_content()), str(html.get_content())
