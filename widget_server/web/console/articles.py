"""Console pages of the help centre: the articles of a site with their metrics, the editor
with a server-rendered preview (admins save), and moderation of comments (agents).

Every number on the list page is defined in docs/help_centre.md ("Metrics"). The preview is
rendered by widget_server.articles (markdown-it-py, then nh3): that HTML is the only thing the
templates print unescaped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.articles import (
    BODY_MAX,
    DEFAULT_CATEGORY,
    DEFLECTION_WINDOW,
    REASON_LABELS,
    STATUSES,
    Article,
    ArticleError,
    ArticleMetrics,
    clean_comment,
    make_source,
    render_markdown,
    sanitize,
)
from widget_server.errors import Conflict, NotFound, Unprocessable
from widget_server.models import AgentSession, Site
from widget_server.numbers import parse_int
from widget_server.runtime import Runtime
from widget_server.web.console.auth import (
    admin_page,
    chosen_site,
    console_page,
    page,
    site_for_agent,
)
from widget_server.web.forms import read_form

METRIC_DAYS = 30


@dataclass
class Draft:
    """The editor's fields as typed (not yet checked)."""

    title: str = ""
    slug: str = ""
    category: str = DEFAULT_CATEGORY
    status: str = "draft"
    body_md: str = ""

    @classmethod
    def of(cls, article: Article) -> Draft:
        return cls(article.title, article.slug, article.category, article.status,
                   article.body_md)

    @classmethod
    def from_form(cls, form: FormData) -> Draft:
        def field(name: str) -> str:
            value = form.get(name, "")
            return value if isinstance(value, str) else ""

        return cls(field("title"), field("slug"), field("category"), field("status"),
                   field("body_md"))


def _rt(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def _int(value: object) -> int | None:
    return parse_int(value)


async def _article(request: Request, article_id: int | None) -> tuple[Site, Article]:
    """The article and its site, if the signed-in agent works on that site."""
    store = _rt(request).store
    found = await store.get_article(article_id) if article_id is not None else None
    site = await store.get_site(found.site_id) if found else None
    if found is None or site is None:
        raise NotFound("no such article", code="article_not_found")
    return await site_for_agent(request, site.key), found


async def _editor(request: Request, site: Site, article: Article | None, draft: Draft, *,
                  status: int = 200, error: str | None = None, preview: str | None = None,
                  notice: str | None = None) -> Response:
    store = _rt(request).store
    comments = await store.list_comments(article.id, include_hidden=True) if article else []
    no_votes = await store.feedback_comments(article.id) if article else []
    return page(request, "console/article_edit.html", status, site=site, article=article,
                draft=draft, statuses=STATUSES, error=error, preview=preview, notice=notice,
                comments=comments, no_votes=no_votes)


# -- the list with its metrics
@console_page
async def articles_list(request: Request) -> Response:
    site, sites = await chosen_site(request)
    rt = _rt(request)
    articles = await rt.store.list_articles(site.id, published_only=False)
    metrics = await rt.store.help_metrics(site.id,
                                          rt.clock.now() - timedelta(days=METRIC_DAYS))
    per_article: dict[int, ArticleMetrics] = {item.id: item for item in metrics.articles}
    return page(request, "console/articles.html", site=site, sites=sites, articles=articles,
                metrics=metrics, per_article=per_article, days=METRIC_DAYS,
                window=int(DEFLECTION_WINDOW.total_seconds() // 60), share=share,
                reason_labels=REASON_LABELS)


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


# -- the editor
@console_page
async def new_article(request: Request) -> Response:
    site, _ = await chosen_site(request)
    return await _editor(request, site, None, Draft())


@console_page
async def edit_article(request: Request) -> Response:
    site, article = await _article(request, request.path_params["id"])
    notice = "Saved." if request.query_params.get("saved") == "1" else None
    return await _editor(request, site, article, Draft.of(article), notice=notice)


@console_page
async def preview(request: Request) -> Response:
    """Render the form's Markdown below the form; nothing is stored."""
    form = await read_form(request)
    article_id = _int(form.get("article"))
    if article_id is not None:
        site, article = await _article(request, article_id)
    else:
        site, article = await site_for_agent(request, str(form.get("site", ""))), None
    draft = Draft.from_form(form)
    if len(draft.body_md) > BODY_MAX:
        return await _editor(request, site, article, draft, status=422,
                             error=f"the body can have at most {BODY_MAX} characters")
    html = await asyncio.to_thread(render_markdown, draft.body_md)
    return await _editor(request, site, article, draft, preview=sanitize(html))


@admin_page
async def create_article(request: Request) -> Response:
    form = await read_form(request)
    site = await site_for_agent(request, str(form.get("site", "")))
    return await _save(request, site, None, Draft.from_form(form))


@admin_page
async def update_article(request: Request) -> Response:
    site, article = await _article(request, request.path_params["id"])
    return await _save(request, site, article, Draft.from_form(await read_form(request)))


async def _save(request: Request, site: Site, article: Article | None, draft: Draft
                ) -> Response:
    store = _rt(request).store
    try:
        source = make_source(draft.title, draft.slug, draft.category, draft.status,
                             draft.body_md)
    except ArticleError as exc:
        return await _editor(request, site, article, draft, status=422, error=str(exc))
    taken = await store.get_article_by_slug(site.id, source.slug)
    if taken is not None and (article is None or taken.id != article.id):
        return await _editor(request, site, article, draft, status=422,
                             error=f"the slug {source.slug!r} is already used by the article "
                                   f"“{taken.title}”; choose another one")
    try:
        if article is not None and article.slug != source.slug:
            await store.rename_article(article.id, source.slug)
        saved, _ = await store.upsert_article(site.id, source)
    except Conflict as exc:  # someone took the slug meanwhile
        return await _editor(request, site, article, draft, status=422, error=exc.message)
    return RedirectResponse(f"/console/help/articles/{saved.id}?saved=1", 303)


# -- comments
@console_page
async def add_comment(request: Request) -> Response:
    site, article = await _article(request, request.path_params["id"])
    form = await read_form(request)
    session: AgentSession = request.state.session
    try:
        body = clean_comment(form.get("body", ""))
    except Unprocessable as exc:
        return await _editor(request, site, article, Draft.of(article), status=422,
                             error=exc.message)
    await _rt(request).store.add_agent_comment(article.id, session.agent, body)
    return RedirectResponse(f"/console/help/articles/{article.id}#comments", 303)


async def _comment_of(request: Request) -> Article:
    _, article = await _article(request, request.path_params["id"])
    wanted = request.path_params["comment"]
    comments = await _rt(request).store.list_comments(article.id, include_hidden=True)
    if not any(comment.id == wanted for comment in comments):
        raise NotFound("no such comment", code="comment_not_found")
    return article


@console_page
async def hide_comment(request: Request) -> Response:
    article = await _comment_of(request)
    hidden = (await read_form(request)).get("hidden", "1") != "0"
    await _rt(request).store.hide_comment(request.path_params["comment"], hidden)
    return RedirectResponse(f"/console/help/articles/{article.id}#comments", 303)


@console_page
async def delete_comment(request: Request) -> Response:
    article = await _comment_of(request)
    await _rt(request).store.delete_comment(request.path_params["comment"])
    return RedirectResponse(f"/console/help/articles/{article.id}#comments", 303)


BASE = "/console/help/articles/{id:id}"
routes = [
    Route("/console/help", articles_list, methods=["GET"]),
    Route("/console/help/new", new_article, methods=["GET"]),
    Route("/console/help/preview", preview, methods=["POST"]),
    Route("/console/help/articles", create_article, methods=["POST"]),
    Route(BASE, edit_article, methods=["GET"]),
    Route(BASE, update_article, methods=["POST"]),
    Route(BASE + "/comments", add_comment, methods=["POST"]),
    Route(BASE + "/comments/{comment:id}/hide", hide_comment, methods=["POST"]),
    Route(BASE + "/comments/{comment:id}/delete", delete_comment, methods=["POST"]),
]
