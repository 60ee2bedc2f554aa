"""The help centre's widget API: article search, one article, anonymous feedback, comments by
signed-in visitors, and the view/search/request events the metrics come from.

Cross-origin like the session endpoint: CORS answers for allowed origins only, and each call
checks that its Origin is allowed for the site. Shapes are documented in docs/help_centre.md.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.abuse import RateLimited
from widget_server.articles import (
    REASONS,
    Article,
    ArticleHit,
    Comment,
    clean_comment,
    parse_feedback,
    snippet_parts,
    snippet_text,
)
from widget_server.client_address import client_address
from widget_server.clock import isoformat
from widget_server.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from widget_server.models import Site
from widget_server.numbers import parse_int
from widget_server.rate_limit import RateLimiter
from widget_server.web.cors import Endpoint, check_origin, preflight, with_cors
from widget_server.web.errors import error_headers, json_error, read_json_object, runtime
from widget_server.web.responses import JSONResponse

SEARCH_LIMIT = 10
QUERY_MAX = 200
BROWSER = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_INT = 2**63 - 1
# (actions, per seconds) per client address and site
LIMITS = {"feedback": (30, 600.0), "comments": (10, 600.0), "events": (300, 600.0)}
NO_CACHE = {"Cache-Control": "no-cache"}


def limit(request: Request, scope: str, site: Site) -> None:
    """Spend one of the client's ``scope`` actions on ``site``, or raise ``RateLimited``.

    Keyed by a salted hash of the client address; the address itself is kept nowhere."""
    limiters: dict[str, RateLimiter] | None = getattr(request.app.state, "help_limiters", None)
    if limiters is None:
        limiters = {name: RateLimiter(*spec) for name, spec in LIMITS.items()}
        request.app.state.help_limiters = limiters
    limiter = limiters[scope]
    address = client_address(request, runtime(request).settings.trusted_proxies)
    wait = limiter.take(limiter.key(address, site.key))
    if wait > 0:
        raise RateLimited(wait)


def base_url(request: Request) -> str:
    public: str | None = runtime(request).settings.public_url
    return public.rstrip("/") if public else f"{request.url.scheme}://{request.url.netloc}"


def article_url(request: Request, site: Site, slug: str) -> str:
    return f"{base_url(request)}/help/articles/{quote(slug)}?site={quote(site.key)}"


def comment_json(comment: Comment) -> dict[str, Any]:
    return {"id": comment.id,
            "author": {"type": comment.author_type, "name": comment.display_name},
            "body": comment.body, "created_at": isoformat(comment.created_at)}


def reasons_json() -> list[dict[str, str]]:
    return [{"key": key, "label": label} for key, label in REASONS.items()]


async def _site(request: Request, key: object) -> Site:
    if not isinstance(key, str) or not 0 < len(key) <= 200:
        raise Unprocessable("site must be a site key", code="invalid_site")
    site = await runtime(request).site(key)
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    return site


async def _article(request: Request, site: Site) -> Article:
    article_id: int = request.path_params["article_id"]
    found = await runtime(request).store.get_article(article_id) if article_id <= MAX_INT \
        else None
    if found is None or found.site_id != site.id or found.status != "published":
        raise NotFound("no such article", code="article_not_found")
    return found


def _hit_json(request: Request, site: Site, hit: ArticleHit) -> dict[str, Any]:
    return {"id": hit.id, "slug": hit.slug, "title": hit.title, "category": hit.category,
            "snippet": snippet_text(hit.snippet), "snippet_parts": snippet_parts(hit.snippet),
            "url": article_url(request, site, hit.slug)}


async def search(request: Request) -> Response:
    site = await _site(request, request.query_params.get("site"))
    query = request.query_params.get("q", "").strip()[:QUERY_MAX]
    limit = parse_int(request.query_params.get("limit", str(SEARCH_LIMIT)), 1, 50)
    if limit is None:
        raise Unprocessable("limit must be a number from 1 to 50", code="invalid_limit")
    store = runtime(request).store
    if query:
        hits = await store.search_articles(site.id, query, limit)
        found = [_hit_json(request, site, hit) for hit in hits]
    else:  # no query: the published articles, by category and title
        found = [{"id": a.id, "slug": a.slug, "title": a.title, "category": a.category,
                  "snippet": "", "snippet_parts": [], "url": article_url(request, site, a.slug)}
                 for a in (await store.list_articles(site.id))[:limit]]
    return JSONResponse({"articles": found}, headers=NO_CACHE)


async def show(request: Request) -> Response:
    site = await _site(request, request.query_params.get("site"))
    article = await _article(request, site)
    comments = await runtime(request).store.list_comments(article.id)
    return JSONResponse({
        "id": article.id, "slug": article.slug, "title": article.title,
        "category": article.category, "html": article.body_html,
        "url": article_url(request, site, article.slug),
        "updated_at": isoformat(article.updated_at),
        "comments": [comment_json(c) for c in comments],
        "feedback_reasons": reasons_json(),
    }, headers=NO_CACHE)


async def _article_site(request: Request) -> tuple[Site, Article]:
    """For writes naming only the article: its site, ``?site=KEY`` if given must match."""
    article_id: int = request.path_params["article_id"]
    article = await runtime(request).store.get_article(article_id) if article_id <= MAX_INT \
        else None
    site = await runtime(request).store.get_site(article.site_id) if article else None
    if article is None or site is None or article.status != "published":
        raise NotFound("no such article", code="article_not_found")
    given = request.query_params.get("site")
    if given is not None and given != site.key:
        raise NotFound("no such article", code="article_not_found")
    check_origin(request, site)
    return site, article


async def feedback(request: Request) -> Response:
    site, article = await _article_site(request)
    limit(request, "feedback", site)
    given = parse_feedback(await read_json_object(request))
    await runtime(request).store.record_feedback(article.id, given)
    return JSONResponse({"ok": True}, status_code=201, headers={"Cache-Control": "no-store"})


async def comment(request: Request) -> Response:
    rt = runtime(request)
    data = await read_json_object(request)
    unknown = set(data) - {"site", "token", "body"}
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}",
                            code="invalid_comment")
    site = await _site(request, data.get("site"))
    article = await _article(request, site)
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("sign in to comment: a visitor token is required",
                           code="invalid_token")
    visitor = await rt.token_visitor(token, site)
    if not visitor.verified:
        raise Forbidden("only signed-in customers can comment on articles",
                        code="comment_requires_sign_in")
    body = clean_comment(data.get("body"))
    limit(request, "comments", site)
    added = await rt.store.add_visitor_comment(article.id, visitor, body)
    return JSONResponse({"comment": comment_json(added)}, status_code=201,
                        headers={"Cache-Control": "no-store"})


async def event(request: Request) -> Response:
    """``{"site", "browser", "type": "view"|"search"|"request", "article"?, "query"?}``."""
    rt = runtime(request)
    data = await read_json_object(request)
    kind = data.get("type")
    allowed = {"view": {"article"}, "search": {"query"}, "request": set[str]()}
    if not isinstance(kind, str) or kind not in allowed:
        raise Unprocessable("type must be view, search or request", code="invalid_event")
    unknown = set(data) - {"site", "browser", "type"} - allowed[kind]
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}",
                            code="invalid_event")
    site = await _site(request, data.get("site"))
    browser = data.get("browser")
    if not isinstance(browser, str) or not BROWSER.fullmatch(browser):
        raise Unprocessable("browser must be 16 to 64 letters, digits, - or _",
                            code="invalid_event")
    limit(request, "events", site)
    if kind == "view":
        article_id = data.get("article")
        if not isinstance(article_id, int) or isinstance(article_id, bool):
            raise Unprocessable("article must be an article id", code="invalid_event")
        article = await rt.store.get_article(article_id) if 0 < article_id <= MAX_INT else None
        if article is None or article.site_id != site.id or article.status != "published":
            raise NotFound("no such article", code="article_not_found")
        await rt.store.record_article_view(site.id, article.id, browser)
    elif kind == "search":
        query = data.get("query")
        if not isinstance(query, str) or not query.strip() or len(query) > QUERY_MAX:
            raise Unprocessable(f"query must be 1 to {QUERY_MAX} characters",
                                code="invalid_event")
        results = len(await rt.store.search_articles(site.id, query, 50))
        await rt.store.record_search(site.id, query.strip(), results, browser)
    else:
        await rt.store.record_help_request(site.id, browser)
    return Response(status_code=204)


def _retry_after(handler: Endpoint) -> Endpoint:
    """A 429 carries Retry-After, readable cross-origin (with_cors would drop the header)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except RateLimited as exc:
            return json_error(429, "rate_limited", exc.message, headers=error_headers(exc))

    return endpoint


routes = [
    Route("/api/widget/v1/articles", with_cors(search), methods=["GET"]),
    Route("/api/widget/v1/articles", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/articles/{article_id:id}", with_cors(show), methods=["GET"]),
    Route("/api/widget/v1/articles/{article_id:id}", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/articles/{article_id:id}/feedback",
          with_cors(_retry_after(feedback)), methods=["POST"]),
    Route("/api/widget/v1/articles/{article_id:id}/feedback", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/articles/{article_id:id}/comments",
          with_cors(_retry_after(comment)), methods=["POST"]),
    Route("/api/widget/v1/articles/{article_id:id}/comments", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/events", with_cors(_retry_after(event)), methods=["POST"]),
    Route("/api/widget/v1/events", preflight, methods=["OPTIONS"]),
]
