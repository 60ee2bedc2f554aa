"""Agent sign-in rules: password checks, exponential login throttling, CSRF tokens.

No web framework here; ``web/console/auth.py`` wires these rules to cookies and forms.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from widget_server.clock import Clock
from widget_server.errors import WidgetError
from widget_server.models import Agent
from widget_server.passwords import verify_password
from widget_server.store import Store

SESSION_LIFETIME = timedelta(hours=12)
# defaults of WIDGET_LOGIN_FREE_FAILURES and WIDGET_LOGIN_MAX_LOCKOUT
FREE_FAILURES = 3  # after these, each failure doubles the wait
MAX_LOCKOUT = timedelta(minutes=15)


class TooManyAttempts(WidgetError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, wait: timedelta, most: timedelta = MAX_LOCKOUT) -> None:
        self.retry_after = max(1, int(wait.total_seconds() + 0.999))
        super().__init__(
            f"Too many failed sign-ins. Try again in {self.retry_after} seconds. Each further "
            f"failed sign-in doubles the wait, up to {_duration(most)}.")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


class BadCredentials(WidgetError):
    code = "bad_credentials"
    status = 401


def throttle_keys(email: str, client: str | None, salt: str = "") -> list[str]:
    """Failures count per account and per client address, stored only as keyed digests (HMAC
    with the server secret), so the table cannot be reversed by hashing every address."""
    def digest(text: str) -> str:
        return hmac.new(salt.encode(), text.encode(), hashlib.sha256).hexdigest()

    keys = ["email:" + digest(email.strip().lower())]
    if client:
        keys.append("client:" + digest(client))
    return keys


def lockout(failures: int, free: int = FREE_FAILURES, most: timedelta = MAX_LOCKOUT
            ) -> timedelta:
    if failures < free:
        return timedelta(0)
    doublings = failures - free
    if doublings >= int(most.total_seconds()).bit_length():  # past the cap: skip 2**huge
        return most
    return min(most, timedelta(seconds=2 ** doublings))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


@dataclass
class SignIn:
    store: Store
    clock: Clock
    salt: str = ""
    free_failures: int = FREE_FAILURES
    max_lockout: timedelta = MAX_LOCKOUT

    def lockout(self, failures: int) -> timedelta:
        return lockout(failures, self.free_failures, self.max_lockout)

    async def sign_in(self, email: str, password: str, client: str | None) -> tuple[Agent, str]:
        """The agent and a new session id, or ``BadCredentials`` / ``TooManyAttempts``.

        The attempt is counted as a failure before the (slow) password check, in one write
        with the throttle check, and cleared only after a success: attempts sent at once
        are each counted, so a burst gets no more checks than attempts sent one by one."""
        keys = throttle_keys(email, client, self.salt)
        wait = await self.store.reserve_login_attempt(keys, self.lockout)
        if wait > timedelta(0):
            raise TooManyAttempts(wait, self.max_lockout)
        found = await self.store.agent_password_hash(email.strip())
        stored = found[1] if found else None
        # scrypt is slow on purpose; off the event loop, and also for unknown emails
        ok = await asyncio.to_thread(verify_password, password, stored or _DUMMY_HASH)
        if found is None or not ok or stored is None or not found[0].active:
            raise BadCredentials("That email and password do not match an active agent.")
        for key in keys:
            await self.store.clear_login_failures(key)
        agent = found[0]
        session_id = await self.store.create_agent_session(agent.id, new_csrf_token(),
                                                           SESSION_LIFETIME)
        return agent, session_id


# verifying against a real hash for unknown emails keeps their timing like known ones
_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)
