"""Satisfaction ratings over HTTP, in process: only the visitor who owns a solved ticket
rates it, changes it for 7 days (the clock moved, not waited for), not when the site's
switch is off; the ticket JSON, the console's ticket page, history, CSV and the API report."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import Site, VisitorClient, console_client, csrf_of, start_session
from widget_server.store.privacy_records import ErasureSelector

pytestmark = pytest.mark.anyio


async def open_request(app: InProcess, site: Site, body: str = "Export to CSV fails"
                       ) -> tuple[str, str]:
    """An anonymous visitor's new request: their token and its conversation id."""
    session = await start_session(app, site)
    visitor = await VisitorClient.connect(app, site, session["token"])
    try:
        ack, _ = await visitor.open_request(body)
    finally:
        await visitor.close()
    return session["token"], ack["conversation"]


async def patch(app: InProcess, token: str, number: int, **fields: Any) -> None:
    async with app.client(headers={"Authorization": f"Bearer {token}"}) as client:
        answer = await client.patch(f"/api/v1/tickets/{number}", json=fields)
    assert answer.status_code == 200, answer.text


async def rate(app: InProcess, site: Site, token: str, conversation: str,
               **fields: Any) -> httpx.Response:
    async with app.client() as client:
        return await client.post(
            "/api/widget/v1/ratings",
            headers={"Origin": site.origin, "Authorization": f"Bearer {token}"},
            json={"site": site.key, "conversation": conversation, **fields})


def error(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


async def test_only_the_owner_rates_a_solved_ticket_and_changes_it_for_seven_days(
        inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    api_token = await inprocess.api_token(site)
    token, conversation = await open_request(inprocess, site)
    other_token, _ = await open_request(inprocess, site, "Someone else's request")

    assert error(await rate(inprocess, site, token, conversation, score=4)) == (
        409, "ticket_not_solved")
    await patch(inprocess, api_token, 1, status="solved")
    assert error(await rate(inprocess, site, other_token, conversation, score=1)) == (
        404, "unknown_conversation")
    for bad in (0, 6, "4", 4.5, True, None):
        assert error(await rate(inprocess, site, token, conversation, score=bad)) == (
            422, "invalid_score"), bad
    assert error(await rate(inprocess, site, token, conversation, score=3,
                            comment="x" * 1001)) == (422, "invalid_comment")

    first = await rate(inprocess, site, token, conversation, score=4, comment="Quick, thanks")
    assert first.status_code == 200, first.text
    given = first.json()["rating"]
    assert given["score"] == 4 and given["comment"] == "Quick, thanks"
    assert given["channel"] == "widget"
    session = await start_session(inprocess, site, token=token)
    assert session["site"]["ratings"] is True
    ticket, = (t for t in session["tickets"] if t["conversation"] == conversation)
    assert ticket["rating"] == {"score": 4, "changeable_until": given["changeable_until"]}
    assert "rating" not in (await start_session(inprocess, site, token=other_token)
                            )["tickets"][0]

    inprocess.clock.advance(timedelta(days=6, hours=23))
    changed = await rate(inprocess, site, token, conversation, score=2)  # comment kept
    assert changed.status_code == 200
    assert changed.json()["rating"]["score"] == 2
    assert changed.json()["rating"]["comment"] == "Quick, thanks"
    assert changed.json()["rating"]["changeable_until"] == given["changeable_until"]
    inprocess.clock.advance(timedelta(hours=1))
    assert error(await rate(inprocess, site, token, conversation, score=5)) == (
        409, "rating_locked")

    async with inprocess.client(headers={"Authorization": f"Bearer {api_token}"}) as client:
        events = (await client.get("/api/v1/tickets/1")).json()["events"]
    ratings = [e for e in events if e["type"] == "rating"]
    assert [e["data"] for e in ratings] == [{"score": 4, "channel": "widget"},
                                            {"score": 2, "channel": "widget", "from": 4}]
    assert all(e["actor"]["type"] == "visitor" for e in ratings)


async def test_a_site_with_ratings_off_refuses_them(inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    api_token = await inprocess.api_token(site)
    token, conversation = await open_request(inprocess, site)
    await patch(inprocess, api_token, 1, status="closed")
    console = await console_client(inprocess, site)
    page = await console.get(f"/console/admin/sites/{site.key}")
    assert 'id="site-ratings" name="ratings" value="on" checked' in page.text
    saved = await console.post(f"/console/admin/sites/{site.key}/ratings",
                               data={"csrf": csrf_of(page.text)})  # the box unticked
    assert saved.status_code == 303
    assert (await start_session(inprocess, site, token=token))["site"]["ratings"] is False
    assert error(await rate(inprocess, site, token, conversation, score=5)) == (
        409, "ratings_off")
    page = await console.get(f"/console/admin/sites/{site.key}")
    await console.post(f"/console/admin/sites/{site.key}/ratings",
                       data={"csrf": csrf_of(page.text), "ratings": "on"})
    assert (await rate(inprocess, site, token, conversation, score=5)).status_code == 200
    await console.aclose()


async def test_console_ticket_report_csv_and_api_report_show_the_rating(
        inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    api_token = await inprocess.api_token(site)
    token, conversation = await open_request(inprocess, site)
    second_token, second = await open_request(inprocess, site, "Another one")
    await patch(inprocess, api_token, 1, status="solved", severity="high")
    await patch(inprocess, api_token, 2, status="solved")
    formula = "=HYPERLINK(\"http://evil.test\")"
    assert (await rate(inprocess, site, token, conversation, score=5,
                       comment="Lovely <b>help</b>")).status_code == 200
    assert (await rate(inprocess, site, second_token, second, score=2,
                       comment=formula)).status_code == 200

    console = await console_client(inprocess, site)
    ticket = (await console.get(f"/console/tickets/{site.key}/1")).text
    assert "5 out of 5" in ticket and "Lovely &lt;b&gt;help&lt;/b&gt;" in ticket
    assert "Rated 5 out of 5" in ticket  # the history
    report = await console.get(f"/console/reports/csat?site={site.key}")
    assert report.status_code == 200
    assert '<dd id="csat-count">2</dd>' in report.text
    assert '<dd id="csat-share">50%</dd>' in report.text
    export = await console.get(f"/console/reports/csat.csv?site={site.key}&days=7")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:4] == ["kind", "week", "agent", "severity"]
    groups = sorted((row[2], row[3], row[4], row[5]) for row in rows if row[0] == "group")
    assert groups == [("Unassigned", "high", "1", "1"), ("Unassigned", "normal", "1", "0")]
    comments = {row[8]: (row[9], row[10]) for row in rows if row[0] == "rating"}
    assert comments == {"#1": ("5", "Lovely <b>help</b>"), "#2": ("2", "'" + formula)}
    await console.aclose()

    async with inprocess.client(headers={"Authorization": f"Bearer {api_token}"}) as client:
        answer = await client.get("/api/v1/reports/csat")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert (data["site"], data["count"], data["satisfied"], data["csat"]) == (
            site.key, 2, 1, 0.5)
        assert data["scores"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
        assert sorted(r["score"] for r in data["ratings"]) == [2, 5]
        tomorrow = (inprocess.clock.now() + timedelta(days=1)).date().isoformat()
        assert error(await client.get(f"/api/v1/reports/csat?since={tomorrow}")) == (
            422, "invalid_since")
        assert error(await client.get("/api/v1/reports/csat?since=yesterday")) == (
            422, "invalid_since")
        assert error(await client.get("/api/v1/reports/csat?site=site_nope")) == (
            404, "site_not_found")
        today = inprocess.clock.now().date().isoformat()
        assert (await client.get(f"/api/v1/reports/csat?since={today}")).json()["count"] == 2


async def test_an_erasure_deletes_the_rating_and_its_comment(inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    api_token = await inprocess.api_token(site)
    token, conversation = await open_request(inprocess, site)
    await patch(inprocess, api_token, 1, status="solved")
    assert (await rate(inprocess, site, token, conversation, score=1,
                       comment="My account number is 12345")).status_code == 200
    visitor_id = (await start_session(inprocess, site, token=token))["visitor"]["id"]
    stored = await inprocess.store.get_site_by_key(site.key)
    assert stored is not None
    await inprocess.store.erase_visitor(stored.id, ErasureSelector("visitor", visitor_id),
                                        "cli")
    async with inprocess.client(headers={"Authorization": f"Bearer {api_token}"}) as client:
        assert (await client.get("/api/v1/reports/csat")).json()["count"] == 0
        ticket = (await client.get("/api/v1/tickets/1")).json()
    rated = [e for e in ticket["events"] if e["type"] == "rating"]
    assert rated and all(e["actor"]["id"] is None for e in rated)
    assert "12345" not in str(ticket)
