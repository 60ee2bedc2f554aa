"""Signed visitor tokens and identity hashes.

A token names the visitor; no database row exists until the visitor's first message, so page
views cost nothing. Tokens are signed with itsdangerous under a purpose-specific salt, carry
their issue time and expire; the newest secret key signs, older ones (fallbacks) still verify,
which lets an operator rotate the key without signing everybody out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from widget_server.clock import Clock, SystemClock
from widget_server.errors import Forbidden, Unauthorized
from widget_server.models import Site, Visitor
from widget_server.text import optional_line

SALT = "widget-server.visitor-token.v1"


class VisitorTokens:
    def __init__(self, secret_key: str, fallbacks: Sequence[str] = (), max_age: int = 2592000,
                 clock: Clock | None = None) -> None:
        keys = [*fallbacks, secret_key]  # itsdangerous signs with the last key
        now = clock or SystemClock()

        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(now.now().timestamp())

        self._serializer = URLSafeTimedSerializer(keys, salt=SALT, signer=ClockSigner)
        self._max_age = max_age
        self._clock = now

    def issue(self, visitor: Visitor, site_key: str) -> str:
        # "t": when the visitor's first token was issued, in milliseconds; a renewed token
        # keeps it, so an erasure refuses every token of the chain (Visitor.since)
        since = visitor.since or self._clock.now()
        payload = {"s": site_key, "v": visitor.id, "u": visitor.user_id, "n": visitor.name,
                   "e": visitor.email, "ok": visitor.verified, "i": visitor.site_id,
                   "t": int(since.timestamp() * 1000),
                   "ev": visitor.email_verified}
        return str(self._serializer.dumps(payload))

    def site_key(self, token: str) -> str | None:
        """The key of the site a genuine, unexpired token was issued for; None otherwise.
        ``read`` with that site still decides who the token speaks for."""
        try:
            payload: Any = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:  # SignatureExpired too
            return None
        key = payload.get("s") if isinstance(payload, dict) else None
        return key if isinstance(key, str) else None

    def read(self, token: str, site: Site) -> Visitor:
        """The visitor a token speaks for on ``site``; ``Unauthorized`` if forged or expired.

        Only the signature and age: whether the visitor was erased since is the store's
        question (``Runtime.token_visitor`` asks it, and every write asks again)."""
        try:
            payload: Any
            payload, signed = self._serializer.loads(token, max_age=self._max_age,
                                                     return_timestamp=True)
        except SignatureExpired:
            raise Unauthorized("the visitor token has expired", code="token_expired") from None
        except BadSignature:
            raise Unauthorized("the visitor token is not valid", code="invalid_token") from None
        if not isinstance(payload, dict) or payload.get("s") != site.key:
            raise Unauthorized("the visitor token belongs to another site",
                               code="invalid_token")
        first = payload.get("t")
        since = (datetime.fromtimestamp(first / 1000, UTC)
                 if isinstance(first, int) and not isinstance(first, bool) else signed)
        return Visitor(id=payload["v"], site_id=site.id, user_id=payload.get("u"),
                       name=_line(payload.get("n")), email=_line(payload.get("e")),
                       verified=bool(payload.get("ok")), since=since,
                       email_verified=bool(payload.get("ev")) and bool(payload.get("e")))


def anonymous_visitor(site: Site, name: str | None = None, email: str | None = None) -> Visitor:
    return Visitor(id="v_" + secrets.token_hex(12), site_id=site.id, user_id=None,
                   name=name, email=email, verified=False)


def identity_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def hash_matches(site: Site, user_id: str, given_hash: str, now: datetime | None = None) -> bool:
    """Whether ``given_hash`` signs ``user_id`` with the site's secret, or with the previous
    secret while its grace period lasts. Every candidate is compared in constant time."""
    given = given_hash.lower().encode()
    matched = False
    for secret in site.identity_secrets(now or datetime.now(UTC)):
        matched |= hmac.compare_digest(identity_hash(secret, user_id).encode(), given)
    return matched


def with_email_proof(site: Site, visitor: Visitor, current: Visitor | None,
                     email: str | None, email_hash: str | None,
                     now: datetime | None = None) -> Visitor:
    """``visitor`` with its email verified when the host signed it (``email_hash``, made
    like the user hash, over the address), or when it is the address an earlier token of
    the same visitor had verified. A wrong ``email_hash`` is refused like a wrong ``hash``."""
    if email_hash is not None:
        if email is None or not hash_matches(site, email, email_hash, now):
            raise Forbidden("the email hash does not match the email",
                            code="invalid_identity")
        return dataclasses.replace(visitor, email_verified=True)
    kept = current is not None and current.email_verified and current.id == visitor.id \
        and current.email == visitor.email
    return dataclasses.replace(visitor, email_verified=kept)


def verified_visitor(site: Site, user_id: str, given_hash: str, name: str | None,
                     email: str | None, now: datetime | None = None) -> Visitor:
    """An identified visitor; the same user id always maps to the same visitor id."""
    if not hash_matches(site, user_id, given_hash, now):
        raise Forbidden("the identity hash does not match the user id", code="invalid_identity")
    return Visitor(id=user_visitor_id(site.id, user_id), site_id=site.id, user_id=user_id,
                   name=name, email=email, verified=True)


def user_visitor_id(site_id: int, user_id: str) -> str:
    """The visitor id of a host user on a site: always the same for the same user."""
    return "v_u" + hashlib.sha256(f"{site_id}:{user_id}".encode()).hexdigest()[:24]


def _line(value: object) -> str | None:
    """A name or email from a token; tokens signed before the edge cleaned them may still
    hold control characters."""
    return optional_line(value) if isinstance(value, str) else None
