"""The outbound mail settings, parsed strictly: WIDGET_SMTP_URL and WIDGET_MAIL_FROM.

``SmtpUrl`` never shows its password: not in ``repr``, not in an error message, not in a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal
from urllib.parse import unquote, urlsplit

Security = Literal["plain", "starttls", "tls"]
_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,253}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                     r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True)
class SmtpUrl:
    host: str
    port: int
    security: Security  # plain, starttls (upgrade after EHLO) or tls (smtps, TLS from the start)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """The URL without its password: what logs and the console may show."""
        scheme = "smtps" if self.security == "tls" else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        query = "?starttls=1" if self.security == "starttls" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"


def parse_smtp_url(text: str) -> SmtpUrl:
    """``smtp://[user:password@]host[:port][?starttls=1]`` or ``smtps://...``. Errors name
    the part that is wrong and never repeat the password."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL like smtp://user:password@host:587?starttls=1") from None
    if parts.scheme not in {"smtp", "smtps"}:
        raise ValueError("must start with smtp:// or smtps://")
    host = parts.hostname or ""
    if not host or not _HOST.match(host):
        raise ValueError("needs a host name, as in smtp://mail.example.com:587")
    if parts.path not in {"", "/"} or parts.fragment:
        raise ValueError("takes no path: smtp://user:password@host:port?starttls=1")
    query = parts.query
    if query not in {"", "starttls=1", "starttls=0"}:
        raise ValueError("understands one option only: ?starttls=1")
    if parts.scheme == "smtps" and query == "starttls=1":
        raise ValueError("smtps:// is TLS from the start; starttls=1 is for smtp://")
    security: Security = "tls" if parts.scheme == "smtps" else (
        "starttls" if query == "starttls=1" else "plain")
    if port is None:
        port = 465 if security == "tls" else (587 if security == "starttls" else 25)
    if not 0 < port < 65536:
        raise ValueError("has a port outside 1-65535")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise ValueError("needs both a user and a password, or neither (user:password@host)")
    return SmtpUrl(host=host, port=port, security=security, username=username,
                   password=password)


def parse_mail_from(text: str) -> str:
    """``Name <address@domain>`` or ``address@domain``: the address of our mails' From."""
    name, address = parseaddr(text.strip())
    local, _, domain = address.rpartition("@")
    if not local or not parse_domain_ok(domain):
        raise ValueError("must be an address like 'Acme Support <support@acme.test>'")
    if any(ord(char) < 32 for char in text):
        raise ValueError("must be on one line")
    return str(Address(display_name=name, addr_spec=address)) if name else address


def mail_from_address(mail_from: str) -> str:
    """The bare address of a WIDGET_MAIL_FROM value."""
    return parseaddr(mail_from)[1]


def parse_domain_ok(domain: str) -> bool:
    return bool(_DOMAIN.match(domain.lower()))


def parse_domain(text: str) -> str:
    domain = text.strip().lower()
    if not parse_domain_ok(domain):
        raise ValueError("must be a domain name like reply.example.com")
    return domain


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:2525`` for IPv6) of the SMTP receiver."""
    host, colon, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not _HOST.match(host) or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:2525")
    return host, int(port)


def parse_support_address(text: str) -> str | None:
    """A site's support address (``support@acme.test``, lowercase); '' or ``off``: none."""
    text = text.strip().lower()
    if text in {"", "off"}:
        return None
    local, at, domain = text.rpartition("@")
    if not at or not local or any(char.isspace() or char in '<>",;' for char in local) \
            or not parse_domain_ok(domain) or len(text) > 254:
        raise ValueError("must be an address like support@acme.test, or off")
    return text
