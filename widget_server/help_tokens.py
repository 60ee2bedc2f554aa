"""Signed tokens of the Help Form: one per rendered form, one per request's private link.

A form token fixes, for one rendered form, the anonymous visitor id and the ``client_msg_id``
its submission is stored under, so submitting the same form twice stores one ticket. A
request token is the private follow link of a request: whoever holds it reads and answers
that one conversation. Both are signed with the server secret under their own salt; the
newest key signs and older ones (fallbacks) still verify, as for visitor tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from widget_server.clock import Clock
from widget_server.models import Site

FORM_SALT = "widget-server.help-form.v1"
REQUEST_SALT = "widget-server.help-request.v1"
CONFIRM_SALT = "widget-server.mail-confirm.v1"
VOTE_SALT = "widget-server.article-vote.v1"
VOTE_MAX_AGE = 24 * 3600  # the reason of a "No" can be given for a day after the click
FORM_MAX_AGE = 24 * 3600  # a form left open for longer is re-rendered with a fresh token
CONFIRM_MAX_AGE = 24 * 3600  # an address confirmation link works for a day after it is mailed
RATING_SALT = "widget-server.mail-rating.v1"
RATING_MAX_AGE = 30 * 24 * 3600  # the solved mail's rating links work for 30 days


@dataclass(frozen=True)
class FormGrant:
    """What one rendered form may submit as."""

    site_key: str
    visitor_id: str
    client_msg_id: str
    issued_at: datetime | None = None  # when the form was rendered (Visitor.since)


@dataclass(frozen=True)
class RequestKey:
    """What a private follow link opens, and who writes when its holder replies.

    Name and email travel along because the store replaces a visitor's stored name and email
    with the ones of each new message: a reply without them would erase them.
    """

    site_key: str
    visitor_id: str
    conversation_id: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class RatingLink:
    """Whose rating of which conversation's ticket a solved mail's rating link records."""

    site_key: str
    visitor_id: str
    conversation_id: str


@dataclass(frozen=True)
class MailConfirmation:
    """What an address confirmation link confirms: this visitor's address, asked for in this
    conversation (docs/email.md)."""

    site_key: str
    visitor_id: str
    conversation_id: str
    email: str


class HelpTokens:
    def __init__(self, secret_key: str, fallbacks: Sequence[str], clock: Clock) -> None:
        keys = [*fallbacks, secret_key]  # itsdangerous signs with the last key

        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

        self._forms = URLSafeTimedSerializer(keys, salt=FORM_SALT, signer=ClockSigner)
        self._requests = URLSafeSerializer(keys, salt=REQUEST_SALT)
        self._confirms = URLSafeTimedSerializer(keys, salt=CONFIRM_SALT, signer=ClockSigner)
        self._ratings = URLSafeTimedSerializer(keys, salt=RATING_SALT, signer=ClockSigner)
        self._votes = URLSafeTimedSerializer(keys, salt=VOTE_SALT, signer=ClockSigner)

    def vote(self, vote_id: int, article_id: int) -> str:
        """The reason step's hold on one anonymous "No": the vote's id, nothing of who."""
        return str(self._votes.dumps({"v": vote_id, "a": article_id}))

    def read_vote(self, token: str, article_id: int) -> int | None:
        """The id of the vote a genuine, fresh token of this article names; None otherwise."""
        try:
            data: Any = self._votes.loads(token, max_age=VOTE_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or data.get("a") != article_id:
            return None
        vote = data.get("v")
        return vote if isinstance(vote, int) and not isinstance(vote, bool) else None

    def new_form(self, site: Site, visitor_id: str) -> tuple[str, FormGrant]:
        grant = FormGrant(site.key, visitor_id, str(uuid.uuid4()))
        token = self._forms.dumps({"s": grant.site_key, "v": grant.visitor_id,
                                   "m": grant.client_msg_id})
        return str(token), grant

    def read_form(self, token: str) -> FormGrant | None:
        """The grant of a genuine, unexpired form token; None otherwise."""
        try:
            data: Any
            data, issued = self._forms.loads(token, max_age=FORM_MAX_AGE,
                                             return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None
        if not _strings(data, "s", "v", "m"):
            return None
        return FormGrant(data["s"], data["v"], data["m"], issued)

    def follow(self, key: RequestKey) -> str:
        return str(self._requests.dumps({"s": key.site_key, "v": key.visitor_id,
                                         "c": key.conversation_id, "n": key.name,
                                         "e": key.email}))

    def read_follow(self, token: str) -> RequestKey | None:
        try:
            data: Any = self._requests.loads(token)
        except BadSignature:
            return None
        if not _strings(data, "s", "v", "c"):
            return None
        name, email = data.get("n"), data.get("e")
        return RequestKey(data["s"], data["v"], data["c"],
                          name if isinstance(name, str) else None,
                          email if isinstance(email, str) else None)


    def confirm(self, key: MailConfirmation) -> str:
        return str(self._confirms.dumps({"s": key.site_key, "v": key.visitor_id,
                                         "c": key.conversation_id, "e": key.email}))

    def read_confirm(self, token: str) -> MailConfirmation | None:
        """What a genuine confirmation link not older than CONFIRM_MAX_AGE confirms."""
        try:
            data: Any = self._confirms.loads(token, max_age=CONFIRM_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not _strings(data, "s", "v", "c", "e"):
            return None
        return MailConfirmation(data["s"], data["v"], data["c"], data["e"])

    def rating(self, link: RatingLink) -> str:
        return str(self._ratings.dumps({"s": link.site_key, "v": link.visitor_id,
                                        "c": link.conversation_id}))

    def read_rating(self, token: str) -> RatingLink | None:
        """What a genuine rating link not older than RATING_MAX_AGE rates."""
        try:
            data: Any = self._ratings.loads(token, max_age=RATING_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not _strings(data, "s", "v", "c"):
            return None
        return RatingLink(data["s"], data["v"], data["c"])


def _strings(data: object, *keys: str) -> bool:
    return isinstance(data, dict) and all(isinstance(data.get(key), str) for key in keys)
