"""The public help centre: home with categories, search, article pages and their feedback form.

Server-rendered, no JavaScript, under the Help Form's strict CSP; several sites are told apart
with ``?site=KEY`` exactly like the Help Form. The only HTML a template outputs unescaped is
an article body, and that is nh3 output (sanitised again right before it is shown).
"""

from __future__ import annotations

from itertools import groupby
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.abuse import RateLimited
from widget_server.articles import (
    COMMENT_MAX,
    REASONS,
    SLUG,
    Article,
    parse_feedback,
    sanitize,
    snippet_parts,
)
from widget_server.errors import Unprocessable
from widget_server.models import Site
from widget_server.web.errors import runtime
from widget_server.web.help_api import QUERY_MAX, limit
from widget_server.web.help_form import (
    NO_STORE,
    PageError,
    _chosen_site,
    _read_fields,
    _site_named,
    page,
    render,
)

SEARCH_RESULTS = 20


def _article_missing(site: Site) -> PageError:
    return PageError(404, "Article not found",
                     "There is no article at this address. It may have been moved; try "
                     "searching the help centre.", site)


async def _published(request: Request, site: Site) -> Article:
    slug = request.path_params["slug"]
    found = await runtime(request).store.get_article_by_slug(site.id, slug) \
        if SLUG.fullmatch(slug) else None
    if found is None or found.status != "published":
        raise _article_missing(site)
    return found


def _article_path(site: Site, slug: str) -> str:
    return f"/help/articles/{quote(slug)}?site={quote(site.key)}"


async def help_home(request: Request) -> Response:
    site, choices = await _chosen_site(request)
    if site is None:
        return render("help_home.html", sites=choices, target="/help")
    articles = await runtime(request).store.list_articles(site.id)
    categories = [(name, [{"title": a.title, "url": _article_path(site, a.slug)}
                          for a in group])
                  for name, group in groupby(articles, key=lambda a: a.category)]
    return render("help_home.html", site=site, categories=categories, query="")


async def help_search(request: Request) -> Response:
    site, choices = await _chosen_site(request)
    if site is None:
        return render("help_home.html", sites=choices, target="/help/search")
    query = " ".join(request.query_params.get("q", "").split())[:QUERY_MAX]
    store = runtime(request).store
    hits = await store.search_articles(site.id, query, SEARCH_RESULTS) if query else []
    if query:
        await store.record_search(site.id, query, len(hits))
    results = [{"title": hit.title, "category": hit.category,
                "url": _article_path(site, hit.slug), "parts": snippet_parts(hit.snippet)}
               for hit in hits]
    return render("help_search.html", site=site, query=query, results=results)


def _article_context(site: Site, article: Article) -> dict[str, Any]:
    return {
        "site": site,
        "article": article,
        "updated": f"{article.updated_at.day} {article.updated_at:%B %Y}",
        "new_request": f"/help/new?site={quote(site.key)}&subject={quote(article.title)}",
        "feedback_action": f"/help/articles/{quote(article.slug)}/feedback",
    }


async def article_page(request: Request) -> Response:
    site, choices = await _chosen_site(request)
    if site is None:
        target = f"/help/articles/{quote(request.path_params['slug'])}"
        return render("help_home.html", sites=choices, target=target)
    article = await _published(request, site)
    store = runtime(request).store
    comments = await store.list_comments(article.id)
    await store.record_article_view(site.id, article.id)
    return render("help_article.html", **_article_context(site, article),
                  body_html=sanitize(article.body_html), comments=comments)


def _reasons_page(site: Site, article: Article, reason: str = "", comment: str = "",
                  error: str | None = None, status: int = 200, vote: str = "") -> Response:
    return render("help_feedback.html", status, NO_STORE, **_article_context(site, article),
                  step="reasons", reasons=REASONS, reason=reason, comment=comment,
                  error=error, comment_max=COMMENT_MAX, vote=vote)


def _too_many(site: Site, exc: RateLimited) -> Response:
    return render("base.html", 429, {**NO_STORE, "Retry-After": exc.retry_after},
                  site=site, heading="Too many answers",
                  message="We got many answers from your network just now. "
                          "Please try again in a few minutes.")


async def post_feedback(request: Request) -> Response:
    fields = await _read_fields(request, COMMENT_MAX)
    site = await _site_named(request, fields.get("site", ""))
    article = await _published(request, site)
    store, tokens = runtime(request).store, runtime(request).help_tokens
    helpful = fields.get("helpful")
    if helpful not in {"yes", "no"}:
        raise PageError(422, "Choose Yes or No",
                        "Tell us whether the article was helpful with the Yes or No button.",
                        site)
    vote = tokens.read_vote(fields.get("vote", ""), article.id) if helpful == "no" else None
    data: dict[str, object] = {"helpful": helpful == "yes"}
    if helpful == "no":
        if fields.get("step") != "reasons":
            # the "No" counts from the click: a reader who leaves at the reason step is heard
            try:
                limit(request, "feedback", site)
            except RateLimited as exc:
                return _too_many(site, exc)
            started = await store.start_no_vote(article.id)
            return _reasons_page(site, article, vote=tokens.vote(started, article.id))
        reason, comment = fields.get("reason", ""), fields.get("comment", "")
        data.update(reason=reason, comment=comment)
        if reason not in REASONS:
            return _reasons_page(site, article, reason, comment,
                                 "Choose the reason that fits best", 422, fields.get("vote", ""))
    try:
        feedback = parse_feedback(data)
        if vote is None:  # a completed vote was counted (and limited) at its click
            limit(request, "feedback", site)
    except Unprocessable as exc:
        return _reasons_page(site, article, str(data.get("reason")), str(data.get("comment")),
                             exc.message, 422, fields.get("vote", ""))
    except RateLimited as exc:
        return _too_many(site, exc)
    if vote is None:
        await store.record_feedback(article.id, feedback)
    else:  # False: this vote has its reason already (the form sent twice); nothing changes
        await store.give_vote_reason(vote, article.id, feedback.reason or "other",
                                     feedback.comment)
    return RedirectResponse(f"/help/articles/{quote(article.slug)}/feedback?site="
                            f"{quote(site.key)}", 303, headers=NO_STORE)


async def feedback_thanks(request: Request) -> Response:
    site, choices = await _chosen_site(request)
    if site is None:
        return render("help_home.html", sites=choices, target="/help")
    article = await _published(request, site)
    return render("help_feedback.html", **_article_context(site, article), step="thanks")


routes = [
    Route("/help", page(help_home), methods=["GET"]),
    Route("/help/search", page(help_search), methods=["GET"]),
    Route("/help/articles/{slug}", page(article_page), methods=["GET"]),
    Route("/help/articles/{slug}/feedback", page(post_feedback), methods=["POST"]),
    Route("/help/articles/{slug}/feedback", page(feedback_thanks), methods=["GET"]),
]
