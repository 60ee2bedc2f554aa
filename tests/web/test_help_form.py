"""The Help Form, the app in process: plain HTML pages that work without JavaScript."""

from __future__ import annotations

import html
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import Api, Site
from widget_server import tickets as rules
from widget_server.clock import parse_iso
from widget_server.models import Ticket
from widget_server.web.help_fields import first_response_promise

pytestmark = pytest.mark.anyio

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture
async def site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


@pytest.fixture
async def browser(inprocess: InProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client like a browser without JavaScript: it posts forms and follows nothing itself."""
    async with inprocess.client() as client:
        yield client


@pytest.fixture
async def api(inprocess: InProcess, site: Site) -> AsyncIterator[Api]:
    client = Api(inprocess, await inprocess.api_token(site))
    yield client
    await client.aclose()


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def open_form(browser: httpx.AsyncClient, site: Site, **query: str) -> dict[str, str]:
    response = await browser.get("/help/new", params={"site": site.key, **query})
    assert response.status_code == 200, response.text
    return {name: hidden(response.text, name) for name in ("site", "form_token", "client_msg_id")}


def filled(form: dict[str, str], **fields: str) -> dict[str, str]:
    values = {"name": "Ada Lovelace", "email": "ada@example.com", "subject": "Export fails",
              "description": "The CSV export button does nothing.\nTried twice.",
              "severity": "high"}
    return {**form, **values, **fields}


async def submit(browser: httpx.AsyncClient, site: Site, **fields: str) -> str:
    """Send a filled form; the private follow link it redirects to."""
    response = await browser.post("/help/new", data=filled(await open_form(browser, site),
                                                           **fields))
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/help/requests/")
    return location


async def test_form_renders_every_field_and_severity_without_scripts(
    browser: httpx.AsyncClient, site: Site
) -> None:
    response = await browser.get("/help/new", params={"site": site.key})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_page_headers(response)
    page = response.text
    assert '<html lang="en">' in page and "<title>Submit a request" in page
    assert 'href="#main"' in page and 'id="main"' in page
    for field in ("name", "email", "subject", "description"):
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    assert '<textarea id="description" name="description"' in page
    for severity in rules.DEFAULT_SEVERITIES:
        assert f'<label for="severity-{severity.key}">{severity.label}</label>' in page
        assert severity.description in page
    assert re.search(r'value="normal"\s+aria-describedby="severity-normal-hint" checked', page)
    assert page.count(" checked") == 1
    assert hidden(page, "site") == site.key
    assert re.fullmatch(r"[0-9a-f-]{36}", hidden(page, "client_msg_id"))
    assert "<script" not in page.lower()
    assert "<style" not in page.lower() and "style=" not in page.lower()
    assert '<link rel="stylesheet" href="/widget/help.css">' in page
    css = await browser.get("/widget/help.css")
    assert css.status_code == 200 and "pre-wrap" in css.text


async def test_a_fresh_form_gets_a_fresh_request_identity(
    browser: httpx.AsyncClient, site: Site
) -> None:
    first, second = await open_form(browser, site), await open_form(browser, site)
    assert first["client_msg_id"] != second["client_msg_id"]
    assert first["form_token"] != second["form_token"]


async def test_submitting_opens_a_form_ticket_with_a_private_follow_page(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    location = await submit(browser, site)
    page = await browser.get(location)
    assert page.status_code == 200
    assert_page_headers(page)
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "Request #1 received" in text
    assert "Received" in text  # the visitor-facing label of status new
    assert "High" in text
    assert "The CSV export button does nothing.\nTried twice." in text
    assert "private" in text and "only key" in text
    assert "<script" not in text.lower()

    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert len(listing) == 1
    ticket = listing[0]
    assert ticket["channel"] == "form"
    assert ticket["severity"] == "high"
    assert ticket["subject"] == "Export fails"
    assert ticket["status"] == "new"
    due = parse_iso(ticket["first_response_due"])
    assert f"We'll reply by {rules.format_due(due)}" in html.unescape(text)
    detail = (await api.client.get("/api/v1/tickets/1")).json()
    assert detail["messages"][0]["author"]["name"] == "Ada Lovelace"
    assert detail["messages"][1]["author"]["type"] == "system"  # the acknowledgement


async def test_submitting_the_same_form_twice_opens_one_ticket(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    form = filled(await open_form(browser, site))
    first = await browser.post("/help/new", data=form)
    again = await browser.post("/help/new", data=form)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert [t["number"] for t in listing] == [1]


async def test_two_forms_open_two_tickets(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    first = await submit(browser, site, description="First problem")
    second = await submit(browser, site, description="Second problem")
    assert first != second
    assert "Request #2 received" in (await browser.get(second)).text
    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert sorted(t["number"] for t in listing) == [1, 2]


async def test_agent_reply_appears_and_visitor_reply_reaches_the_agent(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    location = await submit(browser, site)
    await api.reply(1, "Secret: legacy plan", internal=True)
    await api.reply(1, "Which browser do you use?")
    page = (await browser.get(location)).text
    assert "Which browser do you use?" in page
    assert "Secret" not in page
    assert "In progress" in page
    assert "We first replied on" in page

    form = {"client_msg_id": hidden(page, "client_msg_id"), "body": "Firefox 128 on Linux"}
    for _ in range(2):  # a resubmitted reply is stored once
        posted = await browser.post(location, data=form)
        assert posted.status_code == 303
        assert posted.headers["location"] == location
    thread = (await api.client.get("/api/v1/tickets/1")).json()["messages"]
    replies = [m for m in thread if m["body"] == "Firefox 128 on Linux"]
    assert len(replies) == 1
    assert replies[0]["author"] == {"type": "visitor", "name": "Ada Lovelace",
                                    "id": replies[0]["author"]["id"]}
    assert "Firefox 128 on Linux" in (await browser.get(location)).text


async def test_empty_reply_is_refused_with_the_page_kept(
    browser: httpx.AsyncClient, site: Site
) -> None:
    location = await submit(browser, site)
    page = (await browser.get(location)).text
    client_msg_id = hidden(page, "client_msg_id")
    response = await browser.post(location, data={"client_msg_id": client_msg_id, "body": "  "})
    assert response.status_code == 422
    assert "Write your reply" in response.text
    assert 'aria-invalid="true"' in response.text
    assert hidden(response.text, "client_msg_id") == client_msg_id


async def test_a_closed_request_takes_no_more_replies(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    location = await submit(browser, site)
    page = (await browser.get(location)).text
    closed = await api.client.patch("/api/v1/tickets/1", json={"status": "closed"})
    assert closed.status_code == 200, closed.text
    shown = (await browser.get(location)).text
    assert "This request is closed" in shown and 'name="body"' not in shown
    late = await browser.post(location, data={"client_msg_id": hidden(page, "client_msg_id"),
                                              "body": "One more thing"})
    assert late.status_code == 409
    assert "closed" in late.text


async def test_invalid_input_is_answered_with_the_form_kept_and_clear_errors(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    form = await open_form(browser, site)
    bad = filled(form, name="", email="not-an-email", description="   ", severity="urgent",
                 subject="Kept subject")
    response = await browser.post("/help/new", data=bad)
    assert response.status_code == 422
    assert_page_headers(response)
    page = response.text
    assert "<title>Error: Submit a request" in page
    assert 'class="error-summary"' in page and "There is a problem" in page
    for message in ("Enter your name", "Enter an email address like name@example.com",
                    "Describe your problem", "Choose how severe the problem is"):
        assert page.count(message) == 2  # in the summary and next to the field
    assert 'href="#name"' in page and 'href="#severity-critical"' in page
    assert re.search(r'id="name"[^>]*aria-describedby="name-error" aria-invalid="true"', page)
    assert re.search(r'id="email"[^>]*aria-describedby="email-hint email-error" '
                     r'aria-invalid="true"', page)
    assert 'value="not-an-email"' in page and 'value="Kept subject"' in page
    assert " checked" not in page
    assert hidden(page, "form_token") == form["form_token"]  # the same request identity
    assert hidden(page, "client_msg_id") == form["client_msg_id"]

    fixed = filled(form)
    response = await browser.post("/help/new", data=fixed)
    assert response.status_code == 303
    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert len(listing) == 1


async def test_too_long_fields_are_refused(
    browser: httpx.AsyncClient, site: Site
) -> None:
    form = await open_form(browser, site)
    response = await browser.post("/help/new", data=filled(
        form, name="n" * 201, subject="s" * 201, description="d" * 5001,
        email="a" * 250 + "@example.com"))
    assert response.status_code == 422
    page = response.text
    assert "Your name can have at most 200 characters" in page
    assert "The subject can have at most 200 characters" in page
    assert "The text can have at most 5000 characters; it has 5001" in page
    assert "An email address can have at most 254 characters" in page
    assert "d" * 5001 in page  # kept, so nothing typed is lost


async def test_an_oversized_body_is_refused_before_it_is_read_whole(
    browser: httpx.AsyncClient, site: Site
) -> None:
    form = await open_form(browser, site)
    response = await browser.post("/help/new", data=filled(form, description="x" * 200_000))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")


async def test_untrusted_text_is_escaped_everywhere(
    browser: httpx.AsyncClient, site: Site
) -> None:
    location = await submit(browser, site, name=XSS, subject=XSS, description=XSS)
    page = (await browser.get(location)).text
    assert "<script" not in page and "<img" not in page
    assert page.count(XSS_ESCAPED) >= 3  # subject, requester, and the message body

    form = await open_form(browser, site)
    invalid = await browser.post("/help/new", data=filled(form, name=XSS, subject=XSS,
                                                          description=XSS, email=XSS))
    assert invalid.status_code == 422
    assert "<script" not in invalid.text and "<img" not in invalid.text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"' \
        in invalid.text
    assert XSS_ESCAPED in invalid.text


async def test_quotes_cannot_break_out_of_attributes(
    browser: httpx.AsyncClient, site: Site
) -> None:
    form = await open_form(browser, site)
    response = await browser.post("/help/new", data=filled(
        form, email='x" autofocus onfocus="alert(1)', name="O'Brien \" onmouseover=alert(1)"))
    assert response.status_code == 422
    assert "onfocus=\"alert" not in response.text
    assert "&#34; autofocus onfocus=&#34;alert(1)" in response.text


async def test_a_tampered_follow_link_is_a_404_page(
    browser: httpx.AsyncClient, site: Site
) -> None:
    location = await submit(browser, site)
    token = location.rsplit("/", 1)[1]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for bad in flipped, "nonsense", token + "x", token.rsplit(".", 1)[0]:
        response = await browser.get(f"/help/requests/{bad}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert_page_headers(response)
        assert "Request not found" in response.text
        posted = await browser.post(f"/help/requests/{bad}", data={"body": "hi"})
        assert posted.status_code == 404


async def test_a_tampered_form_token_asks_to_send_again_and_stores_nothing(
    browser: httpx.AsyncClient, site: Site, api: Api
) -> None:
    form = await open_form(browser, site)
    other = await open_form(browser, site)
    for tampered in ({**form, "form_token": "forged"},
                     {**form, "client_msg_id": other["client_msg_id"]}):
        response = await browser.post("/help/new", data=filled(tampered))
        assert response.status_code == 422
        assert "This form has expired" in response.text
        assert 'value="Ada Lovelace"' in response.text
    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert listing == []


async def test_unknown_site_is_a_404_page(browser: httpx.AsyncClient) -> None:
    for response in (await browser.get("/help", params={"site": "site_nope"}),
                     await browser.get("/help/new", params={"site": "site_nope"}),
                     await browser.post("/help/new", data={"site": "site_nope"})):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Help centre not found" in response.text
        assert_page_headers(response)


async def test_subject_is_prefilled_from_the_query(
    browser: httpx.AsyncClient, site: Site
) -> None:
    response = await browser.get("/help/new",
                                 params={"site": site.key, "subject": "Billing <question>"})
    assert 'id="subject" name="subject" value="Billing &lt;question&gt;"' in response.text


async def test_help_home_links_to_the_form(browser: httpx.AsyncClient, site: Site) -> None:
    response = await browser.get("/help", params={"site": site.key})
    assert response.status_code == 200
    assert_page_headers(response)
    assert f'href="/help/new?site={site.key}"' in response.text
    assert "Submit a request" in response.text


async def test_help_home_lists_several_sites_by_name_only(
    browser: httpx.AsyncClient, inprocess: InProcess, site: Site
) -> None:
    other = await inprocess.create_site(name=f"Other shop {uuid.uuid4().hex[:6]}")
    with sqlite3.connect(inprocess.db) as db:
        secrets = [row[0] for row in db.execute("SELECT identity_secret FROM sites")]
    for path in ("/help", "/help/new"):
        page = (await browser.get(path)).text
        assert f'href="{path}?site={other.key}">Other shop ' in page
        assert f'?site={site.key}"' in page
        assert not any(secret in page for secret in secrets)


async def test_a_single_site_is_chosen_without_asking(inprocess: InProcess) -> None:
    only = await inprocess.create_site(name="Only shop")
    async with inprocess.client() as client:
        home = (await client.get("/help")).text
        assert "Only shop help centre" in home
        form = (await client.get("/help/new")).text
        assert hidden(form, "site") == only.key


def _ticket(**changes: Any) -> Ticket:
    created = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": 1, "site_id": 1, "number": 1, "reference": "#1", "conversation_id": "cv_1",
        "subject": "s", "severity": "normal", "status": "new", "stage": None, "channel": "form",
        "assignee_id": None, "first_response_due": created + timedelta(hours=12),
        "first_response_at": None, "created_at": created, "updated_at": created}
    return Ticket(**{**fields, **changes})


def test_the_promise_is_kept_honest() -> None:
    ticket = _ticket()
    due = ticket.first_response_due
    assert first_response_promise(ticket, due - timedelta(minutes=1)) == \
        "We'll reply by Thu 26 Nov 21:00 UTC"
    assert first_response_promise(ticket, due + timedelta(minutes=1)) == \
        "We're late, and still on it"
    answered = _ticket(first_response_at=due - timedelta(hours=1))
    assert first_response_promise(answered, due + timedelta(days=1)) == \
        "We first replied on Thu 26 Nov 20:00 UTC"
    assert first_response_promise(_ticket(status="solved"), due + timedelta(days=1)) is None
