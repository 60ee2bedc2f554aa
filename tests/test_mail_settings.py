"""The outbound mail settings and the signed reply address, as plain functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from widget_server.config import ConfigError, Settings
from widget_server.mail_sender import MAX_ATTEMPTS, retry_delay
from widget_server.mail_settings import SmtpUrl, parse_mail_from, parse_smtp_url
from widget_server.mail_tokens import parse_reply_address, reply_address


@pytest.mark.parametrize(("text", "expected"), [
    ("smtp://mail.example.com", SmtpUrl("mail.example.com", 25, "plain")),
    ("smtp://u:p%40ss@mail.example.com:587?starttls=1",
     SmtpUrl("mail.example.com", 587, "starttls", "u", "p@ss")),
    ("smtps://apikey:s3cret@smtp.provider.test", SmtpUrl("smtp.provider.test", 465, "tls",
                                                          "apikey", "s3cret")),
    ("smtp://127.0.0.1:2525", SmtpUrl("127.0.0.1", 2525, "plain")),
])
def test_smtp_urls_parse(text: str, expected: SmtpUrl) -> None:
    assert parse_smtp_url(text) == expected


@pytest.mark.parametrize("text", [
    "http://u:hunter2@host", "smtp://", "smtp://u:hunter2@host:99999",
    "smtp://u:hunter2@host/path", "smtp://u:hunter2@host?tls=1",
    "smtps://u:hunter2@host?starttls=1", "smtp://u@host", "smtp://u:hunter2@host:port",
])
def test_bad_smtp_urls_fail_at_start_without_showing_the_password(text: str) -> None:
    with pytest.raises(ConfigError, match="WIDGET_SMTP_URL") as error:
        Settings.from_env({"WIDGET_SMTP_URL": text, "WIDGET_MAIL_FROM": "a@b.test"})
    assert "hunter2" not in str(error.value)


def test_the_password_is_never_shown() -> None:
    url = parse_smtp_url("smtp://apikey:hunter2@mail.example.com:587?starttls=1")
    settings = Settings.from_env({"WIDGET_SMTP_URL": "smtps://k:hunter2@h.test",
                                  "WIDGET_MAIL_FROM": "a@b.test"})
    assert str(url) == "smtp://apikey:***@mail.example.com:587?starttls=1"
    for shown in (str(url), repr(url), repr(settings), str(settings.smtp_url)):
        assert "hunter2" not in shown


def test_a_mail_server_needs_a_from_address() -> None:
    with pytest.raises(ConfigError, match="WIDGET_MAIL_FROM"):
        Settings.from_env({"WIDGET_SMTP_URL": "smtp://localhost"})
    settings = Settings.from_env({"WIDGET_SMTP_URL": "smtp://localhost",
                                  "WIDGET_MAIL_FROM": "Acme Support <support@acme.test>",
                                  "WIDGET_MAIL_DELAY_SECONDS": "30",
                                  "WIDGET_MAIL_REPLY_DOMAIN": "Reply.Acme.test"})
    assert settings.mail_from == "Acme Support <support@acme.test>"
    assert (settings.mail_delay_seconds, settings.mail_reply_domain) == (30.0, "reply.acme.test")
    assert Settings.from_env({}).smtp_url is None
    assert Settings.from_env({}).mail_delay_seconds == 120.0


@pytest.mark.parametrize("text", ["support", "Acme <support>", "a@b.test\r\nBcc: x@y.test",
                                  "<@acme.test>", "a@-bad-.test"])
def test_bad_from_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mail_from(text)


def test_a_reply_address_names_its_conversation_and_cannot_be_forged() -> None:
    address = reply_address("secret", "cv_0123456789abcdef0123", "reply.acme.test")
    assert address.startswith("r+cv_0123456789abcdef0123.")
    assert len(address.partition("@")[0]) <= 64  # an SMTP local part
    keys = ["old", "secret"]
    assert parse_reply_address(address, keys, "reply.acme.test") == "cv_0123456789abcdef0123"
    assert parse_reply_address(f"<{address.upper()}>", keys, "REPLY.acme.test") == \
        "cv_0123456789abcdef0123"  # an MTA may fold the case
    local, _, _ = address.partition("@")
    forged = local[:-1] + ("0" if local[-1] != "0" else "1")
    other = reply_address("secret", "cv_ffffffffffffffffffff", "x.test").partition("@")[0]
    for bad in (f"{forged}@reply.acme.test", f"{local}@elsewhere.test", "garbage",
                f"{other.split('.')[0]}.{local.split('.')[1]}@reply.acme.test", "",
                "r+cv_1.@reply.acme.test", f"{local}x@reply.acme.test"):
        assert parse_reply_address(bad, keys, "reply.acme.test") is None
    assert parse_reply_address(address, ["rotated-away"], "reply.acme.test") is None


def test_retries_back_off_to_a_cap_and_end_within_a_day() -> None:
    waits = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits[0] == timedelta(minutes=2) and waits[1] == timedelta(minutes=4)
    assert waits == sorted(waits) and max(waits) == timedelta(hours=6)
    assert timedelta(hours=6) < sum(waits, timedelta()) < timedelta(days=1)
