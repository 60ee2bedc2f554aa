"""Webhooks against real server subprocesses and a real HTTP receiver on loopback: signatures
verified with the standardwebhooks library, a receiver down then up, a server killed after
the event committed, SSRF refusals, redirects, an endpoint disabled after failing for three
days (the server's clock moved by tests/clocked.py), the REST API and the console page."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.clocked import TimeShift
from tests.mail_sink import MailSink, wait_until
from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    csrf_of,
    with_store,
)
from tests.webhook_receiver import Received, Receiver
from widget_server.api_tokens import hash_api_token, new_api_token
from widget_server.store import Store

pytestmark = pytest.mark.anyio
PRIVATE_OK = {"WIDGET_WEBHOOK_ALLOW_PRIVATE": "1"}
THREE_DAYS = 3 * 24 * 3600


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, shift: TimeShift
           ) -> Iterator[ServerProcess]:
    """A server that may deliver to loopback; ``shift`` moves its clock."""
    process = ServerProcess(tmp_path_factory.mktemp("hooks") / "widget.db", env=PRIVATE_OK,
                            launcher=shift.launcher)
    process.start()
    yield process
    process.stop()


def admin_token(site: Site, email: str | None = None) -> str:
    """An API token acting as a (new) admin: only admins manage webhooks."""
    async def make(store: Store) -> str:
        agent, _ = await store.ensure_agent(
            email or f"admin-{uuid.uuid4().hex[:8]}@example.com", "Admin", "admin", None)
        found = await store.get_site_by_key(site.key)
        assert found is not None
        token = new_api_token()
        await store.create_api_token("hooks", hash_api_token(token), found.id, agent.id)
        return token
    return with_store(site.db, make)


def api(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def register(server: ServerProcess, site: Site, url: str, events: list[str],
             **extra: Any) -> dict[str, Any]:
    with api(server, admin_token(site)) as client:
        answer = client.post("/api/v1/webhooks", json={"url": url, "events": events, **extra})
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def attempts(db: Path, endpoint_id: int) -> list[sqlite3.Row]:
    return rows(db, "SELECT a.*, d.webhook_id, d.state FROM webhook_attempts a JOIN"
                    " webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = ?"
                    " ORDER BY a.id", (endpoint_id,))


def signed_with(secret: str, received: Received) -> bool:
    """The signature checked at the request's own timestamp (the server's clock may have
    been moved, which ``Webhook.verify`` would call too new)."""
    at = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), UTC)
    return bool(received.headers["webhook-signature"] ==
                Webhook(secret).sign(received.webhook_id, at, received.body))


async def open_ticket(server: ServerProcess, site: Site, body: str = "Export fails") -> None:
    visitor = await VisitorClient.connect(server, site)
    try:
        await visitor.open_request(body)  # acknowledged: committed
    finally:
        await visitor.close()


async def test_events_arrive_signed_and_verify_with_standardwebhooks(
        hooked: ServerProcess, receiver: Receiver, shift: TimeShift) -> None:
    assert shift.seconds == 0  # the library checks the timestamp against the real time
    site = create_site(hooked.db)
    path = f"/signed-{uuid.uuid4().hex[:8]}"
    made = register(hooked, site, receiver.url(path), ["ticket.created", "message.created"])
    secret = made["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", secret)
    await open_ticket(hooked, site, "The export button does nothing")
    seen = receiver.wait_for(lambda got: len([r for r in got if r.path == path]) >= 2,
                             "ticket.created and message.created")
    mine = [r for r in seen if r.path == path]
    assert [r.json["type"] for r in mine] == ["ticket.created", "message.created"]
    hook = Webhook(secret)
    for each in mine:
        assert re.fullmatch(r"msg_[\w-]+", each.webhook_id)
        assert each.headers["webhook-signature"].startswith("v1,")
        assert hook.verify(each.body, each.headers)["type"] == each.json["type"]
        with pytest.raises(Exception, match="signature"):  # a forged body fails
            hook.verify(each.body.replace(b"export", b"EXPORT"), each.headers)
    message = mine[1].json
    assert message["version"] == 1 and message["data"]["site"] == site.key
    assert message["data"]["message"]["body"] == "The export button does nothing"
    with api(hooked, admin_token(site)) as client:  # the secret was shown once
        listed = client.get("/api/v1/webhooks")
    assert listed.status_code == 200 and secret not in listed.text
    assert listed.json()["webhooks"][0]["url"] == receiver.url(path)


async def test_only_an_admin_s_token_manages_webhooks(server: ServerProcess) -> None:
    site = create_site(server.db)
    body = {"url": "https://hooks.example.com/x", "events": ["ticket.created"]}
    with api(server, site.api_token()) as agent:  # an integration agent's token
        for answer in (agent.post("/api/v1/webhooks", json=body), agent.get("/api/v1/webhooks"),
                       agent.delete("/api/v1/webhooks/1")):
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "admins_only"
    assert httpx.get(server.url + "/api/v1/webhooks").status_code == 401
    with api(server, admin_token(site)) as admin:
        made = admin.post("/api/v1/webhooks", json=body)
        assert made.status_code == 201
        bad = admin.post("/api/v1/webhooks", json={**body, "events": ["ticket.eaten"]})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_events"
        webhook_id = made.json()["webhook"]["id"]
        assert admin.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 204
        assert admin.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 404
        assert admin.get("/api/v1/webhooks").json() == {"webhooks": []}


async def test_private_destinations_are_refused(server: ServerProcess) -> None:
    """The session's server runs without WIDGET_WEBHOOK_ALLOW_PRIVATE."""
    site = create_site(server.db)
    with api(server, admin_token(site)) as admin:
        for url in ("https://127.0.0.1/x", "https://10.1.2.3/x", "https://169.254.169.254/x",
                    "https://[::1]/x", "https://[::ffff:127.0.0.1]/x", "https://[fe80::1]/x",
                    "https://0.0.0.0/x", "https://192.168.1.10/x", "https://224.0.0.1/x"):
            answer = admin.post("/api/v1/webhooks", json={"url": url, "events": ["ticket.created"]})
            assert answer.status_code == 422, url
            assert answer.json()["error"]["code"] == "webhook_url_refused", url
        for url in ("http://hooks.example.com/x", "ftp://hooks.example.com/x",
                    "https://user:pw@hooks.example.com/x", "https:///x"):
            answer = admin.post("/api/v1/webhooks", json={"url": url, "events": ["ticket.created"]})
            assert answer.json()["error"]["code"] == "invalid_url", url
        # a host name is resolved when a delivery is sent: one resolving to loopback is refused
        made = admin.post("/api/v1/webhooks", json={"url": "https://localhost:9/hook",
                                                    "events": ["ticket.created"]})
        assert made.status_code == 201
    endpoint_id = made.json()["webhook"]["id"]
    await open_ticket(server, site)
    wait_until(lambda: bool(attempts(server.db, endpoint_id)), "the first attempt")
    attempt = attempts(server.db, endpoint_id)[0]
    assert attempt["status"] is None
    assert re.match(r"refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address",
                    attempt["error"]), attempt["error"]


async def test_a_redirect_is_not_followed(hooked: ServerProcess, receiver: Receiver) -> None:
    site = create_site(hooked.db)
    path, elsewhere = f"/moved-{uuid.uuid4().hex[:8]}", f"/elsewhere-{uuid.uuid4().hex[:8]}"
    receiver.answers.append((302, {"location": receiver.url(elsewhere)}))
    endpoint_id = register(hooked, site, receiver.url(path), ["ticket.created"])["webhook"]["id"]
    await open_ticket(hooked, site)
    wait_until(lambda: bool(attempts(hooked.db, endpoint_id)), "the first attempt")
    attempt = attempts(hooked.db, endpoint_id)[0]
    assert attempt["status"] == 302 and "redirects are not followed" in attempt["error"]
    assert attempt["state"] == "pending"  # to be retried, at the same URL
    assert not [r for r in receiver.received if r.path == elsewhere]


async def test_a_receiver_down_then_up_gets_the_event_once_under_one_id(
        hooked: ServerProcess, shift: TimeShift) -> None:
    late = Receiver()  # not started: nothing listens on its port
    site = create_site(hooked.db)
    endpoint_id = register(hooked, site, late.url(), ["ticket.created"])["webhook"]["id"]
    await open_ticket(hooked, site)
    wait_until(lambda: bool(attempts(hooked.db, endpoint_id)), "the first attempt")
    late.answers.append((500, {}))  # up, but failing once more
    late.start()
    try:
        shift.advance(60)
        wait_until(lambda: len(attempts(hooked.db, endpoint_id)) == 2, "the second attempt")
        shift.advance(120)
        late.wait_for(lambda got: len(got) == 2, "the third attempt")
        wait_until(lambda: attempts(hooked.db, endpoint_id)[-1]["state"] == "delivered",
                   "the delivery recorded")
        log = attempts(hooked.db, endpoint_id)
        assert log[0]["status"] is None and "ConnectError" in log[0]["error"]
        assert [a["status"] for a in log] == [None, 500, 200]
        assert {a["webhook_id"] for a in log} == {r.webhook_id for r in late.received}
        assert len({r.body for r in late.received}) == 1
        shift.advance(3600)  # nothing more is sent for a delivered event
        await open_ticket(hooked, site)
        late.wait_for(lambda got: len(got) == 3, "the next event")
        assert len({r.webhook_id for r in late.received}) == 2
    finally:
        late.stop()


async def test_an_event_committed_before_a_kill_is_delivered_after_the_restart(
        tmp_path: Path) -> None:
    shift = TimeShift(tmp_path / "offset")
    late = Receiver()
    server = ServerProcess(tmp_path / "widget.db", env=PRIVATE_OK, launcher=shift.launcher)
    server.start()
    try:
        site = create_site(server.db)
        endpoint_id = register(server, site, late.url(), ["ticket.created"])["webhook"]["id"]
        await open_ticket(server, site, "Sent just before the crash")
        server.kill()
        assert rows(server.db, "SELECT state FROM webhook_deliveries WHERE endpoint_id = ?",
                    (endpoint_id,))[0]["state"] == "pending"
        late.start()
        server.start()
        shift.advance(60)  # past the backoff, if an attempt was made before the kill
        late.wait_for(lambda got: len(got) == 1, "the delivery after the restart")
        assert late.received[0].json["data"]["ticket"]["subject"] == "Sent just before the crash"
    finally:
        server.stop()
        late.stop()


async def test_an_endpoint_failing_for_three_days_is_disabled_and_admins_told(
        tmp_path: Path, sink: MailSink) -> None:
    shift = TimeShift(tmp_path / "offset")
    failing = Receiver().start()
    failing.answers.extend([(503, {})] * 20)
    server = ServerProcess(tmp_path / "widget.db", launcher=shift.launcher, env={
        **PRIVATE_OK, "WIDGET_SMTP_URL": sink.url, "WIDGET_MAIL_FROM": "Acme <s@acme.test>"})
    server.start()
    try:
        site = create_site(server.db)
        boss = f"boss-{uuid.uuid4().hex[:6]}@example.com"
        token = admin_token(site, boss)
        with api(server, token) as admin:
            made = admin.post("/api/v1/webhooks", json={"url": failing.url(),
                                                        "events": ["ticket.created"]})
        endpoint_id = made.json()["webhook"]["id"]
        await open_ticket(server, site)
        wait_until(lambda: bool(attempts(server.db, endpoint_id)), "the first attempt")
        shift.advance(THREE_DAYS + 3600)
        wait_until(lambda: len(attempts(server.db, endpoint_id)) == 2, "the last attempt")
        with api(server, token) as admin:
            wait_until(lambda: not admin.get("/api/v1/webhooks").json()["webhooks"][0][
                "enabled"], "the endpoint disabled")
            listed = admin.get("/api/v1/webhooks").json()["webhooks"][0]
        assert "HTTP 503" in listed["disabled_reason"]
        wait_until(lambda: any(str(mail["Subject"]).startswith("Webhook disabled: ")
                               for mail in sink.to(boss)), "the admin's notice")
        console = await console_client(server, site, "admin")
        try:
            page = await console.get(f"/console/admin/sites/{site.key}/webhooks")
        finally:
            await console.aclose()
        assert f'id="disabled-{endpoint_id}"' in page.text and "Enable again" in page.text
    finally:
        server.stop()
        failing.stop()


async def test_the_console_page_registers_tests_and_resends(
        hooked: ServerProcess, receiver: Receiver) -> None:
    site = create_site(hooked.db)
    path = f"/console-{uuid.uuid4().hex[:8]}"
    console = await console_client(hooked, site, "admin")
    try:
        base = f"/console/admin/sites/{site.key}/webhooks"
        page = await console.get(base)
        assert page.status_code == 200 and "No webhooks yet." in page.text
        assert "script-src 'nonce-" in page.headers["content-security-policy"]
        made = await console.post(base, data={
            "csrf": csrf_of(page.text), "url": receiver.url(path),
            "events": ["ticket.created", "message.created"]})
        assert made.status_code == 201
        secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', made.text)
        assert secret, made.text
        again = await console.get(base)
        assert secret.group(1) not in again.text  # shown once
        row = re.search(r'id="webhook-(\d+)"', again.text)
        assert row
        endpoint_id = int(row.group(1))
        sent = await console.post(f"{base}/{endpoint_id}/test",
                                  data={"csrf": csrf_of(page.text)})
        assert sent.status_code == 303
        test, = [r for r in receiver.wait_for(lambda got: any(r.path == path for r in got),
                                              "the test event") if r.path == path]
        assert test.json["type"] == "webhook.test"
        assert signed_with(secret.group(1), test)
        wait_until(lambda: attempts(hooked.db, endpoint_id)[-1:] != [] and attempts(
            hooked.db, endpoint_id)[-1]["state"] == "delivered", "the test event recorded")
        log = await console.get(base)
        delivery_id = re.search(r'id="delivery-(\d+)" data-state="delivered"', log.text)
        assert delivery_id and "answered 200" in log.text
        resent = await console.post(f"{base}/deliveries/{delivery_id.group(1)}/resend",
                                    data={"csrf": csrf_of(page.text)})
        assert resent.status_code == 303
        seen = receiver.wait_for(lambda got: len([r for r in got if r.path == path]) == 2,
                                 "the resent delivery")
        first, second = [r for r in seen if r.path == path]
        assert first.webhook_id == second.webhook_id and first.body == second.body
        refused = await console.post(base, data={"csrf": csrf_of(page.text), "url": "ftp://x",
                                                 "events": ["ticket.created"]})
        assert refused.status_code == 422 and "https://" in refused.text
    finally:
        await console.aclose()
    other = create_site(hooked.db)
    agent = await console_client(hooked, other, "agent")
    try:
        assert (await agent.get(f"/console/admin/sites/{other.key}/webhooks")).status_code == 403
    finally:
        await agent.aclose()
