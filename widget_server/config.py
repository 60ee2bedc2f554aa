"""All configuration in one place: WIDGET_* environment variables, overridable by CLI flags.

Every setting is declared once in ``SETTINGS``; ``docs/configuration.md`` documents each of
them and a test fails when one is missing there.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from widget_server.blob_storage import S3Location, parse_s3_url
from widget_server.client_address import parse_proxies
from widget_server.mail_settings import (
    SmtpUrl,
    parse_domain,
    parse_listen,
    parse_mail_from,
    parse_smtp_url,
)
from widget_server.numbers import parse_signed

DEMO_SITE_SETTING = "demo_site_key"  # server_settings row naming the site /demo embeds


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False  # its value is never repeated in an error message


def _int(text: str) -> int:
    value = parse_signed(text.strip())
    if value is None:
        raise ValueError(f"invalid integer {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _limit(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise ValueError("must be 0 (no limit) or a positive integer")
    return value


def _seconds_or_off(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be 0 (off) or a positive number of seconds")
    return value


def _key_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _synchronous(text: str) -> str:
    value = text.strip().lower()
    if value not in {"full", "normal"}:
        raise ValueError("must be 'full' or 'normal'")
    return value


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value not in {"on", "off", "1", "0", "true", "false"}:
        raise ValueError("must be on or off")
    return value in {"on", "1", "true"}


def _log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError("must be text or json")
    return value


def _metrics_token(text: str) -> str:
    if len(text.strip()) < 16:
        raise ValueError("must be at least 16 characters")
    return text.strip()


def _log_level(text: str) -> str:
    value = text.strip().lower()
    if value not in {"critical", "error", "warning", "info", "debug"}:
        raise ValueError("must be one of critical, error, warning, info, debug")
    return value


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://host:port/db, rediss://... or unix://...")
    return raw


SETTINGS: tuple[Setting, ...] = (
    Setting("db", "WIDGET_DB", str, "SQLite file path or postgresql:// URL."),
    Setting("host", "WIDGET_HOST", str, "Interface to listen on."),
    Setting("port", "WIDGET_PORT", _int, "TCP port to listen on."),
    Setting(
        "secret_key",
        "WIDGET_SECRET_KEY",
        str,
        "Signs visitor tokens. Generated and stored in the database on first start if unset.",
    ),
    Setting(
        "secret_key_fallbacks",
        "WIDGET_SECRET_KEY_FALLBACKS",
        _key_list,
        "Comma-separated previous secret keys still accepted when verifying tokens (rotation).",
    ),
    Setting(
        "public_url",
        "WIDGET_PUBLIC_URL",
        str,
        "URL browsers reach the server at; used in the embed snippet. Default http://HOST:PORT.",
    ),
    Setting("token_max_age", "WIDGET_TOKEN_MAX_AGE", _positive_int, "Visitor token lifetime, s."),
    Setting(
        "hello_timeout",
        "WIDGET_HELLO_TIMEOUT",
        _positive_float,
        "Seconds a new websocket may wait before its hello frame.",
    ),
    Setting(
        "max_frame_bytes",
        "WIDGET_MAX_FRAME_BYTES",
        _positive_int,
        "Largest websocket frame accepted; larger ones close the socket with 1009.",
    ),
    Setting(
        "max_body_chars",
        "WIDGET_MAX_BODY_CHARS",
        _positive_int,
        "Longest message body, in characters.",
    ),
    Setting(
        "max_request_bytes",
        "WIDGET_MAX_REQUEST_BYTES",
        _positive_int,
        "Largest HTTP request body of any route; larger ones are refused with 413.",
    ),
    Setting(
        "sqlite_synchronous",
        "WIDGET_SQLITE_SYNCHRONOUS",
        _synchronous,
        "SQLite synchronous mode: full (survives power loss) or normal (survives kill -9).",
    ),
    Setting("log_level", "WIDGET_LOG_LEVEL", _log_level, "Server log level."),
    Setting("log_format", "WIDGET_LOG_FORMAT", _log_format,
            "Log lines as text (uvicorn's) or json (one object per line, with request ids)."),
    Setting("metrics_token", "WIDGET_METRICS_TOKEN", _metrics_token,
            "Bearer token that may read GET /metrics (docs/operations.md).", secret=True),
    Setting("metrics_allow", "WIDGET_METRICS_ALLOW", parse_proxies,
            "Addresses or networks that may read GET /metrics without the token."),
    Setting("scheduler", "WIDGET_SCHEDULER", _on_off,
            "Run the SLA scheduler in this process (on/off). Safe on several processes."),
    Setting("scheduler_lease", "WIDGET_SCHEDULER_LEASE", _positive_float,
            "Seconds a scheduler's lease lasts: another node takes over within it."),
    Setting("retention_interval", "WIDGET_RETENTION_INTERVAL", _positive_float,
            "Seconds between retention runs of the scheduler (docs/privacy.md)."),
    # abuse limits (widget_server/abuse.py); 0 turns a limit off
    Setting("trusted_proxies", "WIDGET_TRUSTED_PROXIES", parse_proxies,
            "Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed."),
    Setting("sessions_per_ip_hour", "WIDGET_SESSIONS_PER_IP_HOUR", _limit,
            "Session calls per client address per hour."),
    Setting("requests_per_visitor_hour", "WIDGET_REQUESTS_PER_VISITOR_HOUR", _limit,
            "New requests (tickets) per visitor per hour."),
    Setting("requests_per_ip_hour", "WIDGET_REQUESTS_PER_IP_HOUR", _limit,
            "New requests (tickets) per client address per hour, whatever the visitor."),
    Setting("messages_per_visitor_minute", "WIDGET_MESSAGES_PER_VISITOR_MINUTE", _limit,
            "Messages per visitor per minute."),
    Setting("uploads_per_visitor_hour", "WIDGET_UPLOADS_PER_VISITOR_HOUR", _limit,
            "Attachment uploads per visitor per hour."),
    Setting("help_form_posts_per_ip_hour", "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR", _limit,
            "Help Form posts (requests and replies) per client address per hour."),
    Setting("mail_confirmations_per_address_hour",
            "WIDGET_MAIL_CONFIRMATIONS_PER_ADDRESS_HOUR", _limit,
            "Address confirmation mails (Get replies by email) per email address per hour."),
    Setting("mail_confirmations_per_ip_hour", "WIDGET_MAIL_CONFIRMATIONS_PER_IP_HOUR", _limit,
            "Address confirmation mails asked for per client address per hour."),
    Setting("transcripts_per_conversation_hour",
            "WIDGET_TRANSCRIPTS_PER_CONVERSATION_HOUR", _limit,
            "Transcript mails of one conversation per hour (widget and console together)."),
    Setting("ws_connects_per_ip_minute", "WIDGET_WS_CONNECTS_PER_IP_MINUTE", _limit,
            "New /ws/widget connections per client address per minute."),
    Setting("ws_open_per_ip", "WIDGET_WS_OPEN_PER_IP", _limit,
            "/ws/widget connections open at once per client address."),
    Setting("ws_frames_per_minute", "WIDGET_WS_FRAMES_PER_MINUTE", _limit,
            "Frames one /ws/widget connection may send per minute; more closes it (1008)."),
    Setting("ws_idle_timeout", "WIDGET_WS_IDLE_TIMEOUT", _seconds_or_off,
            "Seconds without a frame from the client before a socket is closed (1001)."),
    Setting("ws_ping_interval", "WIDGET_WS_PING_INTERVAL", _seconds_or_off,
            "Seconds between protocol pings; a peer silent as long again is dropped."),
    Setting("http_timeout", "WIDGET_HTTP_TIMEOUT", _seconds_or_off,
            "Seconds a client has to send a request's headers, and between parts of a body."),
    Setting("ws_send_queue", "WIDGET_WS_SEND_QUEUE", _positive_int,
            "Events queued for one slow /ws/widget connection before it is closed (1013)."),
    Setting("ws_fast_send", "WIDGET_WS_FAST_SEND", _on_off,
            "Write websocket text frames to uvicorn's transport directly (on/off)."),
    Setting("site_cache_seconds", "WIDGET_SITE_CACHE_SECONDS", _seconds_or_off,
            "Seconds the sites are kept in memory; changes from other processes show after."),
    Setting("login_free_failures", "WIDGET_LOGIN_FREE_FAILURES", _limit,
            "Failed console sign-ins before each further one doubles the wait."),
    Setting("login_max_lockout", "WIDGET_LOGIN_MAX_LOCKOUT", _positive_int,
            "Longest wait after failed console sign-ins, in seconds."),
    Setting("hsts_seconds", "WIDGET_HSTS_SECONDS", _limit,
            "Strict-Transport-Security max-age on https responses; 0 (default) sends none."),
    Setting("redis_url", "WIDGET_REDIS_URL", _redis_url,
            "redis://host:port/db: live events between nodes and abuse limits shared by them.",
            secret=True),
    # outbound mail (docs/email.md); without an SMTP URL nothing is mailed
    Setting("smtp_url", "WIDGET_SMTP_URL", parse_smtp_url,
            "smtp://user:password@host:port (?starttls=1) or smtps://...: the mail server.",
            secret=True),
    Setting("mail_from", "WIDGET_MAIL_FROM", parse_mail_from,
            "From of the mails sent, e.g. 'Acme Support <support@acme.test>'."),
    Setting("mail_delay_seconds", "WIDGET_MAIL_DELAY_SECONDS", _seconds_or_off,
            "Seconds an agent's reply may stay unread in the widget before it is mailed."),
    Setting("mail_reply_domain", "WIDGET_MAIL_REPLY_DOMAIN", parse_domain,
            "Domain of the signed Reply-To address (r+TOKEN@domain) of the mails sent."),
    # inbound mail (docs/email.md#inbound-mail)
    Setting("smtp_listen", "WIDGET_SMTP_LISTEN", parse_listen,
            "host:port the built-in SMTP receiver of answers listens on; unset: none."),
    Setting("mail_max_bytes", "WIDGET_MAIL_MAX_BYTES", _positive_int,
            "Largest inbound mail accepted, in bytes (SMTP 552 or HTTP 413 beyond)."),
    # webhooks (docs/webhooks.md)
    Setting("webhook_allow_private", "WIDGET_WEBHOOK_ALLOW_PRIVATE", _on_off,
            "Let webhooks go to private, loopback and link-local addresses and to http:// "
            "URLs (on/off; off by default)."),
    # attachments (docs/configuration.md#attachments)
    Setting("data_dir", "WIDGET_DATA_DIR", str,
            "Folder of attachment files and upload spools; default: DB-NAME-data beside the DB."),
    Setting("s3_url", "WIDGET_S3_URL", parse_s3_url,
            "S3-compatible bucket for attachment files, e.g. https://KEY:SECRET@host/bucket.",
            secret=True),
    Setting("max_upload_bytes", "WIDGET_MAX_UPLOAD_BYTES", _positive_int,
            "Ceiling of every site's attachment size limit, in bytes."),
)


@dataclass(frozen=True)
class Settings:
    db: str = "./widget.db"
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str | None = None
    secret_key_fallbacks: tuple[str, ...] = field(default_factory=tuple)
    public_url: str | None = None
    token_max_age: int = 30 * 24 * 3600
    hello_timeout: float = 10.0
    max_frame_bytes: int = 16 * 1024
    max_body_chars: int = 5000
    max_request_bytes: int = 4 * 1024 * 1024  # an article's 200,000 characters, form-encoded
    sqlite_synchronous: str = "full"
    log_level: str = "info"
    log_format: str = "text"
    metrics_token: str | None = None
    metrics_allow: tuple[str, ...] = field(default_factory=tuple)
    scheduler: bool = True
    scheduler_lease: float = 60.0
    retention_interval: float = 3600.0
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    sessions_per_ip_hour: int = 2000
    requests_per_visitor_hour: int = 10
    requests_per_ip_hour: int = 100
    messages_per_visitor_minute: int = 30
    help_form_posts_per_ip_hour: int = 120
    uploads_per_visitor_hour: int = 100
    mail_confirmations_per_address_hour: int = 3
    mail_confirmations_per_ip_hour: int = 10
    transcripts_per_conversation_hour: int = 3
    ws_connects_per_ip_minute: int = 600
    ws_open_per_ip: int = 1000
    ws_frames_per_minute: int = 600
    ws_idle_timeout: float = 300.0
    ws_ping_interval: float = 20.0
    ws_send_queue: int = 1000
    ws_fast_send: bool = True
    http_timeout: float = 30.0
    site_cache_seconds: float = 1.0
    login_free_failures: int = 3
    login_max_lockout: int = 900
    hsts_seconds: int = 0
    redis_url: str | None = None
    smtp_url: SmtpUrl | None = None
    mail_from: str | None = None
    mail_delay_seconds: float = 120.0
    mail_reply_domain: str | None = None
    smtp_listen: tuple[str, int] | None = None
    mail_max_bytes: int = 10 * 1024 * 1024
    webhook_allow_private: bool = False
    data_dir: str | None = None  # None: beside the database (blob_storage.default_data_dir)
    s3_url: S3Location | None = None
    max_upload_bytes: int = 100 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.smtp_url is not None and not self.mail_from:
            raise ConfigError("WIDGET_SMTP_URL is set: set WIDGET_MAIL_FROM too, e.g. "
                              "'Acme Support <support@acme.test>'")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then WIDGET_* variables, then CLI flags (overrides that are not None)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is None or raw == "":
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                shown = setting.env if setting.secret else f"{setting.env}={raw!r}"
                raise ConfigError(f"{shown}: {exc}") from None
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"
