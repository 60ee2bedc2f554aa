"""Abuse limits: how much one visitor, one connection or one client address may do.

The policy lives here and nowhere else; the endpoints ask and translate the answer (a 429
with Retry-After, an ``error`` frame, a 1008 close). Every check returns 0.0 when allowed,
else the seconds to wait. Per-visitor limits are the tight ones, since many visitors can
share one address (an office, a mobile carrier's NAT); per-address limits are generous and
only stop floods. Buckets live in memory under salted keys (``rate_limit.py``), so a restart
forgets them and nothing about who asked is stored; each process counts on its own. With
``WIDGET_REDIS_URL`` the rate limits live in Redis instead (``redis_limits.py``), shared by
every node; what is per connection (frames, typing) or open right now (sockets per address)
stays in the process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from widget_server import metrics
from widget_server.config import Settings
from widget_server.errors import WidgetError
from widget_server.rate_limit import Concurrency, RateLimiter, retry_after
from widget_server.redis_limits import RedisBuckets

MINUTE, HOUR = 60.0, 3600.0
BUSY_RETRY = 30.0  # too many sockets open: we cannot know when one closes, so a guess
TYPING_SECONDS = 2.0  # a visitor's typing reaches agents at most once per conversation per this


class RateLimited(WidgetError):
    code = "rate_limited"
    status = 429

    def __init__(self, seconds: float, message: str = "too many requests; try again later"
                 ) -> None:
        super().__init__(message)
        metrics.RATE_LIMITED.inc()  # made only to refuse something
        self.retry_after = retry_after(seconds)  # whole seconds, at least 1, as header text
        self.seconds = int(self.retry_after)


def enforce(wait: float, message: str = "too many requests; try again later") -> None:
    """Raise ``RateLimited`` when a check said to wait."""
    if wait > 0:
        raise RateLimited(wait, message)


class _Limit:
    """``capacity`` actions per ``period`` seconds per key: in this process, or in Redis."""

    def __init__(self, capacity: int, period: float, now: Callable[[], float],
                 shared: RedisBuckets | None) -> None:
        self.capacity, self.period, self._shared = capacity, period, shared
        self._local = RateLimiter(capacity, period, now)

    async def take(self, *parts: str) -> float:
        if self._shared is not None:
            return await self._shared.take(self.capacity, self.period, parts)
        return self._local.take(self._local.key(*parts))


def _bucket(count: int, period: float, now: Callable[[], float],
            shared: RedisBuckets | None) -> _Limit | None:
    return _Limit(count, period, now, shared) if count > 0 else None


async def _take(limiter: _Limit | None, *parts: str) -> float:
    return await limiter.take(*parts) if limiter is not None else 0.0


@dataclass(frozen=True)
class Admission:
    """The answer to a new websocket: ``wait`` 0.0 when admitted, else why and how long."""

    wait: float
    message: str
    release: Callable[[], None] = field(default=lambda: None)


class Limits:
    """The limits of one server process, built from its Settings (0 turns one off)."""

    def __init__(self, settings: Settings, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        shared = self.shared = RedisBuckets(settings.redis_url) if settings.redis_url else None
        self._sessions = _bucket(settings.sessions_per_ip_hour, HOUR, monotonic, shared)
        self._requests = _bucket(settings.requests_per_visitor_hour, HOUR, monotonic, shared)
        self._address_requests = _bucket(settings.requests_per_ip_hour, HOUR, monotonic,
                                         shared)
        self._messages = _bucket(settings.messages_per_visitor_minute, MINUTE, monotonic,
                                 shared)
        self._forms = _bucket(settings.help_form_posts_per_ip_hour, HOUR, monotonic, shared)
        self._confirm_to = _bucket(settings.mail_confirmations_per_address_hour, HOUR,
                                   monotonic, shared)
        self._confirm_from = _bucket(settings.mail_confirmations_per_ip_hour, HOUR, monotonic,
                                     shared)
        self._transcripts = _bucket(settings.transcripts_per_conversation_hour, HOUR,
                                    monotonic, shared)
        self._connects = _bucket(settings.ws_connects_per_ip_minute, MINUTE, monotonic,
                                 shared)
        frames = settings.ws_frames_per_minute  # per connection: always in the process
        self._frames = RateLimiter(frames, MINUTE, monotonic) if frames > 0 else None
        self._open = Concurrency(settings.ws_open_per_ip) if settings.ws_open_per_ip else None
        self._typing = RateLimiter(1, TYPING_SECONDS, monotonic)
        self._uploads = _bucket(settings.uploads_per_visitor_hour, HOUR, monotonic, shared)

    async def session(self, address: str, returning_visitor: str | None = None) -> float:
        """One call of the session endpoint. A call with a valid token counts against that
        visitor's own bucket, so an office's returning visitors never use up its address's
        budget for new ones."""
        if returning_visitor is not None:
            return await _take(self._sessions, "session-visitor", returning_visitor)
        return await _take(self._sessions, "session", address)

    async def upload(self, visitor_id: str) -> float:
        """One attachment upload by a visitor (each may be up to the site's size limit)."""
        return await _take(self._uploads, "upload", visitor_id)

    async def send(self, visitor_id: str, new_request: bool, address: str) -> float:
        """One visitor message; ``new_request`` when it opens a ticket, which counts against
        the visitor and against the client address too: a script that starts a fresh
        visitor for every ticket still comes from one address."""
        wait = await _take(self._messages, "message", visitor_id)
        if wait == 0.0 and new_request:
            wait = await _take(self._requests, "request", visitor_id)
            if wait == 0.0:
                wait = await _take(self._address_requests, "request-address", address)
        return wait

    def typing(self, visitor_id: str, conversation_id: str) -> bool:
        """Whether a visitor's ``typing`` goes on to the agents: the first of every
        TYPING_SECONDS per conversation does, over all the visitor's sockets; the rest say
        nothing new (the console shows typing for longer than that) and are dropped, so one
        visitor's keystrokes cost every agent socket of the site one frame per period."""
        limiter = self._typing
        return limiter.take(limiter.key("typing", visitor_id, conversation_id)) == 0.0

    async def help_form(self, address: str) -> float:
        """One post of the Help Form or of a reply on its request page."""
        return await _take(self._forms, "form", address)

    async def mail_confirmation(self, email: str, address: str) -> float:
        """One confirmation mail to ``email``, asked for from client ``address``: a typed
        address is mailed only a few times an hour, whoever asks, and one address cannot
        mail many."""
        wait = await _take(self._confirm_to, "confirm-to", email.lower())
        return wait if wait > 0 else await _take(self._confirm_from, "confirm-from", address)

    async def transcript(self, conversation_id: str) -> float:
        """One transcript mail of a conversation, whoever asks (visitor or agent)."""
        return await _take(self._transcripts, "transcript", conversation_id)

    async def connect(self, address: str) -> Admission:
        """One new /ws/widget connection; when admitted, ``release`` must run as it closes."""
        counter = self._open
        if counter is None:
            wait = await _take(self._connects, "connect", address)
            return Admission(wait, "too many new connections from your network")
        key = counter.key(address)
        if not counter.acquire(key):  # first, so a refusal here spends no connection token
            return Admission(BUSY_RETRY, "too many connections open from your network")
        wait = await _take(self._connects, "connect", address)
        if wait > 0:
            counter.release(key)
            return Admission(wait, "too many new connections from your network")
        return Admission(0.0, "", lambda: counter.release(key))

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()

    def frame_budget(self) -> Callable[[], float]:
        """A check for the frames of one connection; each call spends one frame."""
        limiter = self._frames
        if limiter is None:
            return lambda: 0.0
        key = limiter.key("frames", secrets.token_hex(8))
        return lambda: limiter.take(key)
