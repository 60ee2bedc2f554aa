"""POST /api/widget/v1/session: who the visitor is, a signed token, and their tickets.

Creates no database row: a visitor exists in the database from their first message on.
Cross-origin by nature (the host page calls us), so it answers CORS for allowed origins only
(web/cors.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.abuse import enforce
from widget_server.attachment_content import DEFAULT_TYPES
from widget_server.client_address import client_address
from widget_server.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from widget_server.models import Site, Visitor
from widget_server.policy import policy_from_text
from widget_server.realtime.protocol import (
    Send,
    ack_frame,
    decode,
    encode,
    message_frame,
    ticket_json,
    visitor_json,
)
from widget_server.runtime import Runtime
from widget_server.text import one_line
from widget_server.visitor_tokens import (
    anonymous_visitor,
    hash_matches,
    verified_visitor,
    with_email_proof,
)
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.responses import JSONResponse

MAX_FIELD = 200


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise Unprocessable(f"user.{key} must be a string of at most {MAX_FIELD} characters")
    return one_line(value) or None


async def _token_visitor(rt: Runtime, site: Site, token: object) -> Visitor | None:
    """The visitor a still valid token of this site names (not erased since), else None."""
    if not isinstance(token, str):
        return None
    try:
        return await rt.token_visitor(token, site)
    except Unauthorized:
        return None


async def resolve_visitor(rt: Runtime, site: Site, token: object, user: object) -> Visitor:
    current: Visitor | None = None
    if token is not None:
        if not isinstance(token, str):
            raise Unprocessable("token must be a string or null", code="invalid_token")
        current = await _token_visitor(rt, site, token)  # a stale one starts a fresh session
    if site.identity_required:
        return _required_identity(rt, site, current, user)
    if user is None:
        return current or anonymous_visitor(site)
    if not isinstance(user, dict):
        raise Unprocessable("user must be an object or null", code="invalid_user")
    user_id = user.get("id")
    if user_id is not None and not isinstance(user_id, (str, int)):
        raise Unprocessable("user.id must be a string", code="invalid_user")
    name, email, given_hash = _text(user, "name"), _text(user, "email"), _text(user, "hash")
    if user_id is not None and given_hash:
        visitor = verified_visitor(site, str(user_id), given_hash, name, email, rt.clock.now())
    else:  # unverified details never link to a user id: anybody could claim any id
        base = current if current is not None and not current.verified \
            else anonymous_visitor(site)
        visitor = Visitor(id=base.id, site_id=site.id, user_id=None, name=name or base.name,
                          email=email or base.email, verified=False, since=base.since)
    return with_email_proof(site, visitor, current, email, _text(user, "email_hash"),
                            rt.clock.now())


def identity_required() -> Forbidden:
    return Forbidden("this site only talks to signed-in users of its product: identify the "
                     "visitor with a valid user hash", code="identity_required")


def _required_identity(rt: Runtime, site: Site, current: Visitor | None,
                       user: object) -> Visitor:
    """In ``required`` mode only a valid user hash (or a token issued for one) gets in."""
    if user is None:
        if current is not None and current.verified:
            return current
        raise identity_required()
    if not isinstance(user, dict):
        raise Unprocessable("user must be an object or null", code="invalid_user")
    user_id = user.get("id")
    if user_id is not None and not isinstance(user_id, (str, int)):
        raise Unprocessable("user.id must be a string", code="invalid_user")
    name, email, given_hash = _text(user, "name"), _text(user, "email"), _text(user, "hash")
    if user_id is None or not given_hash or \
            not hash_matches(site, str(user_id), given_hash, rt.clock.now()):
        raise identity_required()
    visitor = verified_visitor(site, str(user_id), given_hash, name, email, rt.clock.now())
    return with_email_proof(site, visitor, current, email, _text(user, "email_hash"),
                            rt.clock.now())


async def _mail_verified(rt: Runtime, visitor: Visitor) -> bool:
    """Whether follow-ups of the visitor's new requests are mailed: the host signed their
    address, or they confirmed one through the link we mailed (docs/email.md)."""
    if visitor.email_verified and visitor.email:
        return True
    return await rt.store.visitor_mail_confirmed(visitor.id) is not None


async def create_session(request: Request) -> Response:
    rt = runtime(request)
    data = await read_json_object(request)
    site_key = data.get("site")
    if not isinstance(site_key, str) or not site_key:
        raise Unprocessable("site must be a site key", code="invalid_site")
    site = await rt.site(site_key)
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    returning = await _token_visitor(rt, site, data.get("token"))
    enforce(await rt.limits.session(client_address(request, rt.settings.trusted_proxies),
                              returning.id if returning else None))
    visitor = await resolve_visitor(rt, site, data.get("token"), data.get("user"))
    conversations = await rt.store.visitor_conversations(visitor.id)
    policy = policy_from_text(site.policy)
    mail = rt.settings.smtp_url is not None
    body = {
        "token": rt.tokens.issue(visitor, site.key),
        "visitor": {**visitor_json(visitor),
                    "mail_verified": mail and await _mail_verified(rt, visitor)},
        "site": {
            "key": site.key,
            "name": site.name,
            "severities": [
                {"key": s.key, "label": s.label, "description": s.description,
                 "first_response_hours": s.first_response.total_seconds() / 3600}
                for s in policy.severities
            ],
            "default_severity": policy.default_severity,
            "visitor_proposes_severity": policy.visitor_proposes_severity,
            "mail": mail,
            "ratings": site.ratings_enabled,
            "limits": {"max_body_chars": rt.settings.max_body_chars,
                       "max_frame_bytes": rt.settings.max_frame_bytes,
                       "idle_timeout": rt.settings.ws_idle_timeout},
            "attachments": {"max_bytes": site.attachment_max_bytes,
                            "max_files": site.attachment_max_files,
                            "types": list(site.attachment_types or DEFAULT_TYPES)},
        },
        "tickets": [
            {**ticket_json(c.ticket), "conversation": c.id, "last_seq": c.last_seq}
            for c in conversations
            if c.ticket is not None
        ],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def post_message(request: Request) -> Response:
    """The HTTP way in for a visitor message, for when a websocket cannot connect.

    Same rules as a websocket ``send``: idempotent per ``client_msg_id``, answered only
    after commit, and announced live to the visitor's other tabs and to agents.
    """
    rt = runtime(request)
    data = await read_json_object(request)
    site_key, token = data.get("site"), data.get("token")
    site = await rt.site(site_key) if isinstance(site_key, str) else None
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    if not isinstance(token, str):
        raise Unauthorized("a visitor token is required", code="invalid_token")
    visitor = await rt.token_visitor(token, site)
    if site.identity_required and not visitor.verified:
        raise identity_required()
    frame = decode(encode({**data, "type": "send"}))
    if not isinstance(frame, Send):
        raise Unprocessable("not a message", code="invalid_frame")
    enforce(await rt.limits.send(visitor.id, new_request=frame.conversation is None,
                           address=client_address(request, rt.settings.trusted_proxies)))
    result = await rt.messaging.visitor_send(
        visitor, frame.conversation, frame.client_msg_id, frame.body, frame.severity,
        frame.subject, channel="widget", follow_up_of=frame.follow_up_of,
        attachments=tuple(frame.attachments), max_files=site.attachment_max_files)
    rt.messaging.announce(visitor, result)
    return JSONResponse({"ack": ack_frame(result.message, result.ticket),
                         "messages": [message_frame(m) for m in result.created]})


routes = [Route("/api/widget/v1/session", with_cors(create_session), methods=["POST"]),
          Route("/api/widget/v1/session", preflight, methods=["OPTIONS"]),
          Route("/api/widget/v1/messages", with_cors(post_message), methods=["POST"]),
          Route("/api/widget/v1/messages", preflight, methods=["OPTIONS"])]
