"""Satisfaction ratings from visitors: the widget's call and the solved mail's links.

``POST /api/widget/v1/ratings`` (visitor token, ``{conversation, score, comment}``) records
or changes the rating of the visitor's solved ticket (ratings.py). The solved mail carries
five links ``GET /api/widget/v1/ratings/{token}?score=N``: each shows a form with that score
chosen and a comment box, and writes nothing (mail scanners follow links); its ``POST``
records the rating.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server import ratings as rules
from widget_server.abuse import enforce
from widget_server.errors import NotFound, Unauthorized, Unprocessable, WidgetError
from widget_server.models import Site
from widget_server.numbers import parse_int
from widget_server.web.bearer import bearer_token
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.forms import read_form
from widget_server.web.responses import JSONResponse
from widget_server.web.session import identity_required
from widget_server.web.templating import render

MAX_ID = 64
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
FIELDS = {"site", "token", "conversation", "score", "comment"}


async def rate(request: Request) -> Response:
    rt = runtime(request)
    data = await read_json_object(request)
    site_key = data.get("site")
    site = await rt.site(site_key) if isinstance(site_key, str) else None
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    token = bearer_token(request) or data.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("a visitor token is required", code="invalid_token")
    visitor = await rt.token_visitor(token, site)
    if site.identity_required and not visitor.verified:
        raise identity_required()
    unknown = set(data) - FIELDS
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}",
                            code="unknown_field")
    conversation = data.get("conversation")
    if not isinstance(conversation, str) or not conversation or len(conversation) > MAX_ID:
        raise Unprocessable("conversation must be the id of one of your requests",
                            code="invalid_conversation")
    score = rules.parse_score(data.get("score"))
    # a rating counts as a message against the visitor's limit: changes stay few
    enforce(await rt.limits.send(visitor.id, new_request=False, address=""))
    # no comment, or null: the stored one stays; "" removes it
    keep = data.get("comment") is None
    comment = rules.parse_comment(data.get("comment"))
    rating = await rt.messaging.rate(site.id, visitor.id, conversation, score, comment, keep,
                                     "widget")
    return JSONResponse({"rating": rating.as_json()}, headers={"Cache-Control": "no-store"})


async def _link(request: Request) -> tuple[Site, str, str] | None:
    rt = runtime(request)
    found = rt.help_tokens.read_rating(request.path_params["token"])
    site = await rt.site(found.site_key) if found is not None else None
    if found is None or site is None:
        return None
    return site, found.visitor_id, found.conversation_id


async def link_page(request: Request) -> Response:
    """The mail's link: a form with the score it carries chosen; nothing is written."""
    found = await _link(request)
    if found is None:
        return _broken_link(None)
    site = found[0]
    if not site.ratings_enabled:
        return _page(site, "Ratings are off", f"{site.name} no longer asks for ratings.", 409)
    score = parse_int(request.query_params.get("score", ""), 1, 5)
    return render("rating.html", headers=NO_STORE, site=site, heading="How did we do?",
                  scores=list(rules.SCORE_LABELS.items()), chosen=score, error=None,
                  comment_max=rules.COMMENT_MAX)


async def link_post(request: Request) -> Response:
    """The form's POST records the rating, or changes it within its 7 days."""
    found = await _link(request)
    if found is None:
        return _broken_link(None)
    site, visitor_id, conversation = found
    form = await read_form(request)
    comment_text = form.get("comment")
    try:
        score = rules.parse_form_score(form.get("score"))
        comment = rules.parse_comment(comment_text)  # an empty box keeps the stored one
        enforce(await runtime(request).limits.send(visitor_id, new_request=False, address=""))
        await runtime(request).messaging.rate(site.id, visitor_id, conversation, score,
                                              comment, comment is None, "email")
    except WidgetError as exc:
        if exc.code in {"invalid_score", "invalid_comment"}:
            return render("rating.html", status=422, headers=NO_STORE, site=site,
                          heading="How did we do?", scores=list(rules.SCORE_LABELS.items()),
                          chosen=None, error=exc.message, comment_max=rules.COMMENT_MAX)
        return _page(site, "Your rating was not recorded", exc.message, exc.status)
    return _page(site, "Thank you", f"Your rating of {score} out of 5 is recorded. You can "
                 "change it for 7 days from this link. You can close this page.")


def _page(site: Site | None, heading: str, message: str, status: int = 200) -> Response:
    return render("base.html", status=status, headers=NO_STORE, site=site, heading=heading,
                  message=message)


def _broken_link(site: Site | None) -> Response:
    return _page(site, "This link does not work", "It is not a rating link of ours, or it is "
                 "more than 30 days old.", 400)


routes = [
    Route("/api/widget/v1/ratings", with_cors(rate), methods=["POST"]),
    Route("/api/widget/v1/ratings", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/ratings/{token}", link_page, methods=["GET"]),
    Route("/api/widget/v1/ratings/{token}", link_post, methods=["POST"]),
]
