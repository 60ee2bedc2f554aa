"""The agent console pages against a real server: inbox, ticket view and its actions, saved
replies, search, CSRF, site membership and escaping of everything visitors write."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from markupsafe import escape

from tests.support import ServerProcess, Site, VisitorClient, create_site, run_cli, start_session
from widget_server.web.console.present import countdown, highlight, web_url

pytestmark = pytest.mark.anyio

XSS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(document.cookie)",
    '<svg onload="alert(1)"><circle/></svg>',
    "{{7*7}} ${7*7} {% raw %}",
]


class Console:
    """One signed-in agent's browser, as plain HTTP."""

    def __init__(self, server: ServerProcess) -> None:
        self.client = httpx.AsyncClient(base_url=server.url)
        self.csrf = ""

    async def sign_in(self, email: str, password: str) -> None:
        form = (await self.client.get("/console/login")).text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token
        response = await self.client.post("/console/login", data={
            "email": email, "password": password, "login_token": token.group(1)})
        assert response.status_code == 303, response.text
        inbox = await self.get("/console")
        found = re.search(r'data-csrf="([^"]+)"', inbox.text)
        assert found
        self.csrf = found.group(1)

    async def get(self, path: str, status: int = 200,
                  params: dict[str, str] | None = None) -> httpx.Response:
        response = await self.client.get(path, params=params)
        assert response.status_code == status, response.text
        if status == 200:
            csp = response.headers["content-security-policy"]
            assert "script-src 'nonce-" in csp and "unsafe-inline" not in csp
        return response

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
                   status: int = 303) -> httpx.Response:
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        response = await self.client.post(path, data=form)
        assert response.status_code == status, response.text
        return response

    async def aclose(self) -> None:
        await self.client.aclose()


def add_agent(site: Site, *more: Site) -> tuple[str, str]:
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    password = "pw-" + uuid.uuid4().hex[:10]
    sites = [arg for s in (site, *more) for arg in ("--site", s.key)]
    run_cli("agent", "add", "--db", str(site.db), "--email", email, "--password", password,
            "--name", "Agent " + email[6:10], *sites)
    return email, password


@pytest.fixture
async def console(server: ServerProcess, site: Site) -> AsyncIterator[Console]:
    agent = Console(server)
    await agent.sign_in(*add_agent(site))
    yield agent
    await agent.aclose()


def ticket_path(site: Site, number: int, action: str = "") -> str:
    return f"/console/tickets/{site.key}/{number}" + (f"/{action}" if action else "")


def main_part(page: str) -> str:
    return page[page.index('<main id="main">'):page.index("</main>")]


async def test_inbox_lists_a_widget_ticket_and_a_reply_reaches_the_visitor_live(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("The CSV export is empty")

    inbox = (await console.get("/console")).text
    assert f'href="{ticket_path(site, 1)}">#1</a>' in inbox
    assert "The CSV export is empty" in inbox
    assert "<title>(1) Inbox · widget-server</title>" in inbox
    assert 'class="unread' in inbox and 'data-unread="1"' in inbox
    assert re.search(r'<time class="countdown" datetime="[^"]+Z">in 1[01] h \d+ min</time>', inbox)

    await console.get(ticket_path(site, 1))  # reading it clears the unread marker
    inbox = (await console.get("/console")).text
    assert "<title>Inbox · widget-server</title>" in inbox and 'data-unread="0"' in inbox

    response = await console.post(ticket_path(site, 1, "reply"),
                                  {"body": "Which browser do you use?"})
    assert response.headers["location"] == ticket_path(site, 1)
    frame = await visitor.recv_type("message")
    assert frame["body"] == "Which browser do you use?"
    assert frame["author"]["type"] == "agent"
    page = (await console.get(ticket_path(site, 1))).text
    assert "Which browser do you use?" in page and "First response sent" in page

    await visitor.send("Firefox", conversation=frame["conversation"])
    await visitor.recv_type("ack")
    assert 'data-unread="1"' in (await console.get("/console")).text
    read = await console.client.post(ticket_path(site, 1, "read"),
                                      headers={"X-CSRF-Token": console.csrf})
    assert read.status_code == 204  # what console.js sends when it showed the message live
    assert 'data-unread="0"' in (await console.get("/console")).text
    await visitor.close()


async def test_internal_note_never_reaches_the_visitor_nor_the_replay(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request("Login loops forever")
    await console.post(ticket_path(site, 1, "note"), {"body": "Secret: customer is on plan X"})
    await console.post(ticket_path(site, 1, "reply"), {"body": "Public answer"})
    frame = await visitor.recv_type("message")
    assert frame["body"] == "Public answer" and frame["seq"] == 3
    assert all("Secret" not in json.dumps(f) for f in await visitor.frames_until_pong())
    await visitor.close()

    again = await VisitorClient.connect(server, site, visitor.token,
                                        resume={ack["conversation"]: 0})
    replayed = await again.frames_until_pong()
    assert [f["seq"] for f in replayed if f["type"] == "message"] == [1, 2, 3]
    assert "Secret" not in json.dumps(replayed)
    await again.close()

    page = main_part((await console.get(ticket_path(site, 1))).text)
    note = page[page.index("Secret: customer"):]
    assert "Internal note" in page[:page.index("Secret: customer")].rsplit("<article", 1)[1]
    assert 'value="' not in note.split("</article>", 1)[0]  # a note cannot be split off


async def test_triage_update_changes_status_stage_severity_and_assignee(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Invoices are wrong")
    page = (await console.get(ticket_path(site, 1))).text
    me = re.search(r'<option value="(\d+)"[^>]*>[^<]*\(me\)</option>', page)
    assert me
    before = re.search(r'First response</dt><dd>\s*due <time class="countdown" datetime="([^"]+)"',
                       page)
    assert before
    await console.post(ticket_path(site, 1, "update"), {
        "status": "pending", "stage": "replicated", "severity": "critical",
        "assignee": me.group(1)})
    frame = await visitor.recv_type("ticket")
    assert frame["ticket"]["status"] == "pending" and frame["ticket"]["severity"] == "critical"
    page = (await console.get(ticket_path(site, 1))).text
    assert 'id="ticket-status">Pending (waiting on the visitor)<' in page
    assert "Severity changed from Normal to Critical" in page
    assert "Stage changed from not set to Replicated" in page
    assert f'<option value="{me.group(1)}" selected>' in page
    inbox = (await console.get("/console?assignee=me&severity=critical")).text
    assert f'href="{ticket_path(site, 1)}"' in inbox
    assert f'href="{ticket_path(site, 1)}"' not in (await console.get("/console?status=new")).text

    refused = await console.post(ticket_path(site, 1, "update"), {"assignee": "987654"},
                                 status=422)
    assert "choose an agent who works on this site" in refused.text
    refused = await console.post(ticket_path(site, 1, "update"), {"status": "bogus"}, status=422)
    assert "unknown status" in refused.text
    await visitor.close()


async def test_severities_come_from_the_site_policy(
    server: ServerProcess, site: Site, console: Console, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('default_severity = "routine"\n'
                      '[[severity]]\nkey = "urgent"\nlabel = "Urgent <P1>"\n'
                      'description = "Down"\nfirst_response = "1h"\n'
                      '[[severity]]\nkey = "routine"\nlabel = "Routine"\n'
                      'description = "Other"\nfirst_response = "8h"\n')
    run_cli("policy", "import", "--db", str(server.db), "--site", site.key, str(policy))
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Something broke")
    await visitor.close()
    page = (await console.get(ticket_path(site, 1))).text
    assert '<option value="urgent">Urgent &lt;P1&gt;</option>' in page
    assert '<option value="critical">' not in page
    assert "Created via the widget with routine severity" in page
    await console.post(ticket_path(site, 1, "update"), {"severity": "urgent"})
    page = (await console.get(ticket_path(site, 1))).text
    assert "Severity changed from Routine to Urgent &lt;P1&gt;" in page
    inbox = (await console.get("/console?severity=urgent")).text
    assert f'href="{ticket_path(site, 1)}"' in inbox and "Urgent &lt;P1&gt;</span>" in inbox
    assert re.search(r'datetime="[^"]+">in (59 min|1 h 0 min)</time>', inbox)


async def test_split_makes_a_second_ticket_that_the_visitor_is_told_about(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request("Export fails")
    await visitor.send("Also: the PDF preview is blank", conversation=ack["conversation"])
    second = await visitor.recv_type("ack")

    refused = await console.post(ticket_path(site, 1, "split"), {}, status=422)
    assert "choose at least one message" in refused.text
    response = await console.post(ticket_path(site, 1, "split"),
                                  {"message": str(second["message_id"])})
    assert response.headers["location"] == ticket_path(site, 2)
    frame = await visitor.recv_type("ticket")
    while frame["ticket"]["number"] != 2:  # first the old ticket's update
        frame = await visitor.recv_type("ticket")
    assert frame["conversation"] != ack["conversation"]

    page = (await console.get(ticket_path(site, 2))).text
    assert "Also: the PDF preview is blank" in page
    assert f'Split from <a href="{ticket_path(site, 1)}">#1</a>' in page
    assert "Created by splitting #1" in page
    original = (await console.get(ticket_path(site, 1))).text
    assert "Messages split off into #2" in original
    assert f'href="{ticket_path(site, 2)}">#2</a>' in original  # the visitor's other tickets
    session = await start_session(server, site, visitor.token)
    assert sorted(t["number"] for t in session["tickets"]) == [1, 2]
    await visitor.close()


async def test_merge_closes_the_source_ticket(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Cannot log in")
    await visitor.open_request("Still cannot log in")
    refused = await console.post(ticket_path(site, 2, "merge"), {"into": "77"}, status=422)
    assert "ticket 77 does not exist" in refused.text
    response = await console.post(ticket_path(site, 2, "merge"), {"into": "#1"})
    assert response.headers["location"] == ticket_path(site, 1)
    closed = await visitor.recv_type("ticket")
    assert closed["ticket"]["number"] == 2 and closed["ticket"]["status"] == "closed"
    source = (await console.get(ticket_path(site, 2))).text
    assert 'id="ticket-status">Closed<' in source
    assert f'Merged into <a href="{ticket_path(site, 1)}">#1</a>' in source
    target = (await console.get(ticket_path(site, 1))).text
    assert "#2 was merged into this ticket" in target
    await visitor.close()


async def test_escalate_and_return_keep_the_reason_and_filter_by_tier(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Database is slow")
    page = (await console.get(ticket_path(site, 1))).text
    assert "Escalate to Second level" in page and "Return to" not in page
    refused = await console.post(ticket_path(site, 1, "escalate"), {"reason": "  "}, status=422)
    assert "say why" in refused.text
    await console.post(ticket_path(site, 1, "escalate"), {"reason": "Needs a <DBA>"})
    frame = await visitor.recv_type("ticket")
    assert frame["ticket"]["specialists"] is True
    page = (await console.get(ticket_path(site, 1))).text
    assert "Escalated from First level to Second level. Reason: Needs a &lt;DBA&gt;" in page
    assert "Return to First level" in page
    link = f'href="{ticket_path(site, 1)}"'
    assert link in (await console.get("/console?tier=2")).text
    assert link not in (await console.get("/console?tier=1")).text

    await console.post(ticket_path(site, 1, "return"), {"reason": "Index added, over to you"})
    page = (await console.get(ticket_path(site, 1))).text
    assert "Returned from Second level to First level. Reason: Index added, over to you" in page
    assert link in (await console.get("/console?tier=1")).text
    assert link not in (await console.get("/console?tier=2")).text
    await console.post(ticket_path(site, 1, "return"), {"reason": "again"}, status=409)
    await visitor.close()


async def test_saved_replies_create_edit_insert_data_and_delete(
    server: ServerProcess, site: Site, console: Console
) -> None:
    body = "Thanks for writing! </script><script>alert(1)</script>"
    await console.post("/console/saved-replies", {
        "action": "save", "site": site.key, "shortcut": "/thanks", "title": "Thanks",
        "body": body})
    listing = (await console.get("/console/saved-replies")).text
    assert "<code>/thanks</code>" in listing
    taken = await console.post("/console/saved-replies", {
        "action": "save", "site": site.key, "shortcut": "thanks", "title": "Again",
        "body": "x"}, status=409)
    assert "is taken on this site" in taken.text
    bad = await console.post("/console/saved-replies", {
        "action": "save", "site": site.key, "shortcut": "no spaces", "title": "T",
        "body": "x"}, status=422)
    assert "a shortcut is" in bad.text

    reply_id = re.search(r"saved-replies\?edit=(\d+)", listing)
    assert reply_id
    edit = (await console.get(f"/console/saved-replies?edit={reply_id.group(1)}")).text
    assert "Edit /thanks" in edit
    await console.post("/console/saved-replies", {
        "action": "save", "id": reply_id.group(1), "shortcut": "thanks",
        "title": "Thank you", "body": body})
    assert "Thank you" in (await console.get("/console/saved-replies")).text

    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Hello")
    await visitor.close()
    page = (await console.get(ticket_path(site, 1))).text
    data = re.search(r'<script type="application/json" id="saved-replies">(.*?)</script>',
                     page, re.S)
    assert data and json.loads(data.group(1)) == [
        {"shortcut": "thanks", "title": "Thank you", "body": body}]
    assert "</script><script>alert(1)" not in page
    assert 'Insert saved reply' in page

    await console.post("/console/saved-replies", {"action": "delete", "id": reply_id.group(1)})
    assert "<code>/thanks</code>" not in (await console.get("/console/saved-replies")).text
    await console.post("/console/saved-replies", {"action": "delete", "id": "999999"},
                       status=404)


async def test_search_finds_words_and_escapes_the_snippet(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Quarterly report")
    await visitor.close()
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("The <b>zebrafish</b> chart <script>alert(1)</script> breaks")
    await visitor.close()
    page = (await console.get("/console/search?q=zebrafi")).text
    assert f'href="{ticket_path(site, 2)}"' in page
    assert f'href="{ticket_path(site, 1)}"' not in page
    assert "&lt;b&gt;<mark>zebrafish</mark>&lt;/b&gt;" in page
    assert "<script>alert(1)" not in page and "\x02" not in page and "\x03" not in page
    for payload in XSS:  # search pages show the query and snippets, both escaped
        found = main_part((await console.get("/console/search", params={"q": payload})).text)
        assert "<script>alert" not in found and "<img src" not in found
        assert "<svg" not in found and 'href="javascript:' not in found


async def test_posts_without_the_csrf_token_are_refused(
    server: ServerProcess, site: Site, console: Console
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Help")
    for action, data in (("reply", {"body": "forged"}), ("note", {"body": "forged"}),
                         ("update", {"status": "closed"}), ("escalate", {"reason": "forged"})):
        await console.post(ticket_path(site, 1, action), data, csrf=False, status=403)
        await console.post(ticket_path(site, 1, action), {**data, "csrf": "wrong"},
                           csrf=False, status=403)
    await console.post("/console/saved-replies", {"action": "save", "site": site.key,
                       "shortcut": "x", "title": "x", "body": "x"}, csrf=False, status=403)
    page = (await console.get(ticket_path(site, 1))).text
    assert "forged" not in page and 'id="ticket-status">New<' in page
    assert all(f["type"] != "message" for f in await visitor.frames_until_pong())
    await visitor.close()


async def test_an_agent_of_site_a_cannot_touch_site_b(server: ServerProcess) -> None:
    site_a, site_b = create_site(server.db), create_site(server.db)
    visitor = await VisitorClient.connect(server, site_b)
    await visitor.open_request("Private to site B")
    await visitor.close()
    console = Console(server)
    await console.sign_in(*add_agent(site_a))
    forbidden = await console.get(ticket_path(site_b, 1), status=403)
    assert "Private to site B" not in forbidden.text
    assert "you do not work on this site" in forbidden.text
    for action in ("reply", "note", "update", "split", "merge", "escalate", "return", "read"):
        await console.post(ticket_path(site_b, 1, action),
                           {"body": "x", "reason": "x", "into": "1", "status": "closed"},
                           status=403)
    await console.get(ticket_path(site_b, 999), status=403)
    await console.get(ticket_path(site_a, 999), status=404)
    await console.get("/console/tickets/site_nope/1", status=404)
    await console.get(f"/console?site={site_b.key}", status=403)
    inbox = (await console.get("/console?status=all")).text
    assert "Private to site B" not in inbox
    assert "Private to site B" not in (await console.get("/console/search?q=private")).text
    await console.post("/console/saved-replies", {"action": "save", "site": site_b.key,
                       "shortcut": "b", "title": "b", "body": "b"}, status=403)
    await console.aclose()


class PageVisitor(VisitorClient):
    """A visitor whose hello names the page the widget is on."""

    page = ""

    async def open(self, resume: dict[str, int] | None = None) -> dict[str, Any]:
        self.ws = await websockets.connect(
            self.server.ws_url, origin=self.site.origin,  # type: ignore[arg-type]
            user_agent_header="<script>alert('ua')</script>")
        await self.send_frame({"type": "hello", "site": self.site.key, "token": self.token,
                               "resume": resume or {}, "page": self.page})
        self.ready = await self.recv()
        assert self.ready["type"] == "ready", self.ready
        return self.ready


async def test_visitor_text_is_escaped_everywhere(
    server: ServerProcess, site: Site, console: Console
) -> None:
    session = await start_session(server, site, user={"name": XSS[1], "email": "x@example.com"})
    PageVisitor.page = "javascript:alert(document.domain)"
    visitor = await PageVisitor.connect(server, site, session["token"])
    ack, _ = await visitor.open_request(XSS[0] + " first", subject=XSS[3] + " " + XSS[4])
    for payload in XSS:
        await visitor.send(payload, conversation=ack["conversation"])
        await visitor.recv_type("ack")
    await visitor.close()

    pages = [(await console.get(path)).text for path in ("/console", ticket_path(site, 1))]
    for page in pages:
        body = main_part(page)
        for raw in ("<script>alert", "<img src=x", "<svg onload", "onerror=\"alert"):
            assert raw not in body
        assert "{{7*7}}" in body and ">49<" not in body
    inbox, ticket = main_part(pages[0]), main_part(pages[1])
    assert str(escape(XSS[1])) in inbox  # the visitor's name
    assert str(escape(f"{XSS[3]} {XSS[4]}")) in inbox  # the subject, literally
    assert str(escape(f"{XSS[3]} {XSS[4]}")) in ticket
    assert "javascript:alert(document.domain)" in ticket  # as text ...
    assert 'href="javascript:' not in ticket  # ... never as a link
    assert "&lt;script&gt;alert(&#39;ua&#39;)&lt;/script&gt;" in ticket
    for payload in XSS:
        assert str(escape(payload)) in ticket


# -- the wording helpers, without a server
def test_countdown_wording_matches_the_console_script() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert countdown(now + timedelta(hours=3, minutes=20, seconds=5), now) == "in 3 h 20 min"
    assert countdown(now - timedelta(minutes=12), now) == "overdue by 12 min"
    assert countdown(now + timedelta(days=2, hours=4), now) == "in 2 d 4 h"
    assert countdown(now + timedelta(seconds=30), now) == "in less than a minute"
    assert countdown(now, now) == "overdue by less than a minute"


def test_snippet_highlights_split_into_plain_parts() -> None:
    assert highlight("a <b>\x02needle\x03</b> and \x02hay\x03") == [
        ("a <b>", False), ("needle", True), ("</b> and ", False), ("hay", True)]
    assert highlight("no marks") == [("no marks", False)]
    assert highlight("\x03stray\x02") == [("stray", False)]


def test_only_web_urls_become_links() -> None:
    assert web_url("https://shop.test/cart?x=1") == "https://shop.test/cart?x=1"
    for bad in ("javascript:alert(1)", " JAVASCRIPT:alert(1)", "data:text/html,<b>",
                "vbscript:x", "//evil.test", "", None, "http://[bad"):
        assert web_url(bad) is None
