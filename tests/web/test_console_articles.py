"""Console pages of the help centre with the app in process: the editor with its preview,
publishing, who may save, moderation of comments, CSRF and the metrics page."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import sqlite3
import uuid

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import Site, console_client, csrf_of, start_session

pytestmark = pytest.mark.anyio

XSS_BODY = """Intro <script>alert(1)</script>

<img src=x onerror=alert(2)>

[click me](javascript:alert(3))

<svg onload=alert(4)></svg>

## Steps

1. Open **Settings**
"""


@pytest.fixture
async def site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


async def sign_in(inprocess: InProcess, site: Site, role: str = "admin") -> httpx.AsyncClient:
    return await console_client(inprocess, site, role)


def fields(site: Site, csrf: str, slug: str, status: str = "published", **extra: str
           ) -> dict[str, str]:
    return {"csrf": csrf, "site": site.key, "title": extra.get("title", f"How to {slug}"),
            "slug": slug, "category": "Account", "status": status,
            "body_md": extra.get("body_md", f"To {slug}, open **Settings**.")}


async def create(client: httpx.AsyncClient, site: Site, slug: str, status: str = "published",
                 **extra: str) -> int:
    csrf = csrf_of((await client.get(f"/console/help/new?site={site.key}")).text)
    saved = await client.post("/console/help/articles",
                              data=fields(site, csrf, slug, status, **extra))
    assert saved.status_code == 303, saved.text
    found = re.fullmatch(r"/console/help/articles/(\d+)\?saved=1", saved.headers["location"])
    assert found
    return int(found.group(1))


def preview_of(html: str) -> str:
    found = re.search(r'<section class="article-preview".*?</section>', html, re.S)
    assert found
    return found.group(0)


async def verified_token(inprocess: InProcess, site: Site, name: str) -> str:
    with contextlib.closing(sqlite3.connect(site.db)) as conn:
        secret = conn.execute("SELECT identity_secret FROM sites WHERE key = ?",
                              (site.key,)).fetchone()[0]
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    session = await start_session(inprocess, site, user={"id": user_id, "name": name,
                                                         "hash": digest})
    token: str = session["token"]
    return token


async def test_admin_previews_saves_and_publishes_an_article(
    inprocess: InProcess, site: Site
) -> None:
    client = await sign_in(inprocess, site)
    new = await client.get(f"/console/help/new?site={site.key}")
    assert new.status_code == 200 and "Preview" in new.text and "Save" in new.text
    csrf = csrf_of(new.text)
    shown = await client.post("/console/help/preview",
                              data=fields(site, csrf, "reset-password", body_md=XSS_BODY))
    assert shown.status_code == 200
    preview = preview_of(shown.text)
    assert "<h2>Steps</h2>" in preview and "<strong>Settings</strong>" in preview
    assert "<script" not in preview and "<svg" not in preview and "<img" not in preview
    assert "&lt;script&gt;" in preview
    assert not re.search(r"<[^>]*\son\w+\s*=", preview)
    assert "href=\"javascript" not in preview and "<a " not in preview
    form = re.search(r'<textarea id="body_md"[^>]*>(.*?)</textarea>', shown.text, re.S)
    assert form and "Intro &lt;script&gt;alert(1)&lt;/script&gt;" in form.group(1)
    public = f"/help/articles/reset-password?site={site.key}"
    assert (await client.get(public)).status_code == 404  # a preview stores nothing

    article = await create(client, site, "reset-password", "draft", title="Reset your password")
    assert (await client.get(public)).status_code == 404  # drafts stay private
    edit = await client.get(f"/console/help/articles/{article}?saved=1")
    assert edit.status_code == 200 and "Saved." in edit.text
    published = await client.post(f"/console/help/articles/{article}", data=fields(
        site, csrf, "reset-password", title="Reset your password",
        body_md="Forgot your password? Use the link on the sign-in page."))
    assert published.status_code == 303
    page = await client.get(public)
    assert page.status_code == 200 and "Reset your password" in page.text
    found = await client.get("/api/widget/v1/articles",
                             params={"site": site.key, "q": "passw"},
                             headers={"Origin": site.origin})
    assert found.status_code == 200
    assert [hit["slug"] for hit in found.json()["articles"]] == ["reset-password"]

    listed = await client.get(f"/console/help?site={site.key}")
    assert listed.status_code == 200 and "Reset your password" in listed.text
    assert "published" in listed.text
    await client.aclose()


async def test_slugs_are_unique_per_site_and_can_be_changed(
    inprocess: InProcess, site: Site
) -> None:
    client = await sign_in(inprocess, site)
    first = await create(client, site, "billing")
    second = await create(client, site, "invoices")
    csrf = csrf_of((await client.get(f"/console/help/articles/{first}")).text)
    duplicate = await client.post("/console/help/articles", data=fields(site, csrf, "billing"))
    assert duplicate.status_code == 422 and "already used" in duplicate.text
    taken = await client.post(f"/console/help/articles/{second}",
                              data=fields(site, csrf, "billing"))
    assert taken.status_code == 422 and "already used" in taken.text
    bad = await client.post(f"/console/help/articles/{second}",
                            data=fields(site, csrf, "Not A Slug"))
    assert bad.status_code == 422 and "slug" in bad.text
    renamed = await client.post(f"/console/help/articles/{second}",
                                data=fields(site, csrf, "invoices-and-receipts"))
    assert renamed.headers["location"] == f"/console/help/articles/{second}?saved=1"
    assert (await client.get(f"/help/articles/invoices-and-receipts?site={site.key}")
            ).status_code == 200
    assert (await client.get(f"/help/articles/invoices?site={site.key}")).status_code == 404
    other = await inprocess.create_site()  # the same slug in another site is fine
    await create(client, other, "billing")
    await client.aclose()


async def test_an_agent_can_view_and_preview_but_not_save(
    inprocess: InProcess, site: Site
) -> None:
    admin = await sign_in(inprocess, site)
    article = await create(admin, site, "notifications")
    agent = await sign_in(inprocess, site, role="agent")
    listed = await agent.get(f"/console/help?site={site.key}")
    assert listed.status_code == 200 and "How to notifications" in listed.text
    assert "New article" not in listed.text
    edit = await agent.get(f"/console/help/articles/{article}")
    assert edit.status_code == 200 and ">Save</button>" not in edit.text
    csrf = csrf_of(edit.text)
    assert (await agent.post("/console/help/preview", data={
        **fields(site, csrf, "notifications"), "article": str(article)})).status_code == 200
    assert (await agent.post(f"/console/help/articles/{article}",
                             data=fields(site, csrf, "notifications", title="Hacked"))
            ).status_code == 403
    assert (await agent.post("/console/help/articles", data=fields(site, csrf, "new-one"))
            ).status_code == 403
    stranger_site = await inprocess.create_site()
    stranger = await sign_in(inprocess, stranger_site, role="agent")
    assert (await stranger.get(f"/console/help?site={site.key}")).status_code == 403
    assert (await stranger.get(f"/console/help/articles/{article}")).status_code == 403
    async with inprocess.client() as anonymous:
        assert (await anonymous.get(f"/console/help?site={site.key}")).status_code == 303
    for client in (admin, agent, stranger):
        await client.aclose()


async def test_agents_comment_hide_and_delete_and_the_public_page_follows(
    inprocess: InProcess, site: Site
) -> None:
    admin = await sign_in(inprocess, site)
    article = await create(admin, site, "api-tokens")
    await admin.aclose()
    token = await verified_token(inprocess, site, "Grace")
    async with inprocess.client(headers={"Origin": site.origin}) as widget:
        posted = await widget.post(f"/api/widget/v1/articles/{article}/comments",
                                   json={"site": site.key, "token": token,
                                         "body": "Spam <b>offer</b>"})
    assert posted.status_code == 201, posted.text
    comment = posted.json()["comment"]["id"]
    agent = await sign_in(inprocess, site, role="agent")
    page_url = f"/console/help/articles/{article}"
    csrf = csrf_of((await agent.get(page_url)).text)
    added = await agent.post(f"{page_url}/comments", data={"csrf": csrf, "body": "Thanks all"})
    assert added.status_code == 303
    public = f"/help/articles/api-tokens?site={site.key}"
    text = (await agent.get(public)).text
    assert "Spam &lt;b&gt;offer&lt;/b&gt;" in text and "Thanks all" in text

    no_csrf = await agent.post(f"{page_url}/comments/{comment}/hide", data={"hidden": "1"})
    assert no_csrf.status_code == 403
    assert "Spam" in (await agent.get(public)).text
    hidden = await agent.post(f"{page_url}/comments/{comment}/hide",
                              data={"csrf": csrf, "hidden": "1"})
    assert hidden.status_code == 303
    assert "Spam" not in (await agent.get(public)).text
    console = (await agent.get(page_url)).text
    assert "Spam &lt;b&gt;offer&lt;/b&gt;" in console and "Hidden" in console
    assert "Unhide" in console
    await agent.post(f"{page_url}/comments/{comment}/hide", data={"csrf": csrf, "hidden": "0"})
    assert "Spam" in (await agent.get(public)).text
    deleted = await agent.post(f"{page_url}/comments/{comment}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert "Spam" not in (await agent.get(public)).text
    assert "Spam" not in (await agent.get(page_url)).text
    again = await agent.post(f"{page_url}/comments/{comment}/delete", data={"csrf": csrf})
    assert again.status_code == 404
    empty = await agent.post(f"{page_url}/comments", data={"csrf": csrf, "body": "  "})
    assert empty.status_code == 422
    assert (await agent.post(f"{page_url}/comments", data={"body": "x"})).status_code == 403
    await agent.aclose()


async def test_the_metrics_page_counts_views_and_searches_without_results(
    inprocess: InProcess, site: Site
) -> None:
    admin = await sign_in(inprocess, site)
    article = await create(admin, site, "exporting-data", title="Export your data")
    for _ in range(2):
        assert (await admin.get(f"/help/articles/exporting-data?site={site.key}")
                ).status_code == 200
    assert (await admin.get("/help/search", params={"site": site.key, "q": "gdpr"})
            ).status_code == 200
    page = (await admin.get(f"/console/help?site={site.key}")).text
    row = re.search(rf'<tr data-article="{article}">.*?</tr>', page, re.S)
    assert row and '<td class="views">2</td>' in row.group(0)
    assert '<dd data-metric="views">2</dd>' in page
    assert '<dd data-metric="searches_without_results">1</dd>' in page
    assert "<td>gdpr</td>" in page and "Deflection rate" in page
    assert "docs/help_centre.md" in page
    await admin.aclose()
