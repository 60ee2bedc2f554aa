"""Attachments against a real server: uploads over HTTP, messages that carry them over the
websocket and REST, who may read a file, the content checks (docs/api.md#attachments)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    csrf_of,
    start_session,
)

pytestmark = pytest.mark.anyio


def png_bytes(color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (16, 16), "blue")
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def upload(server: ServerProcess, site: Site, token: str, data: bytes,
                 name: str = "shot.png", path: str = "/api/widget/v1/attachments",
                 headers: dict[str, str] | None = None) -> httpx.Response:
    async with server.client() as client:
        return await client.post(path, files={"file": (name, data, "image/png")},
                                 headers={"Origin": site.origin,
                                          "Authorization": f"Bearer {token}",
                                          **(headers or {})})


async def fetch(server: ServerProcess, url: str, token: str | None = None) -> httpx.Response:
    async with server.client() as client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await client.get(url, headers=headers)


async def test_a_visitor_uploads_sends_and_sees_the_attachment_everywhere(
        server: ServerProcess, site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)
    answer = await upload(server, site, visitor.token, png_bytes(), name="../../etc/shot.png")
    assert answer.status_code == 201, answer.text
    attachment: dict[str, Any] = answer.json()["attachment"]
    assert attachment["name"] == "shot.png"  # no path parts survive
    assert attachment["content_type"] == "image/png"
    assert attachment["url"] == f"/attachments/{attachment['id']}"
    assert set(attachment) == {"id", "name", "size", "content_type", "url"}

    other_tab = await VisitorClient.connect(server, site, token=visitor.token)
    ack, _ = await visitor.open_request("Here is the error", attachments=[attachment["id"]])
    assert ack["attachments"] == [attachment]
    echoed = await other_tab.recv_type("message")
    assert echoed["attachments"] == [attachment]
    number = ack["ticket"]["number"]

    api = Api(server, site.api_token())
    try:
        ticket = (await api.client.get(f"/api/v1/tickets/{number}")).json()
        first = ticket["messages"][0]
        assert first["attachments"] == [attachment]
        assert all(m["attachments"] == [] for m in ticket["messages"][1:])
        served = await fetch(server, attachment["url"], site.api_token("reader"))
        assert served.status_code == 200
        assert served.content == png_bytes()
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
        assert served.headers["content-disposition"].startswith("inline;")
    finally:
        await api.aclose()
        await visitor.close()
        await other_tab.close()

    mine = await fetch(server, attachment["url"], visitor.token)
    assert mine.status_code == 200 and mine.content == png_bytes()
    stranger = (await start_session(server, site))["token"]
    assert (await fetch(server, attachment["url"], stranger)).status_code == 404
    assert (await fetch(server, attachment["url"])).status_code == 404
    elsewhere = create_site(server.db)
    other_agent = await fetch(server, attachment["url"], elsewhere.api_token())
    assert other_agent.status_code == 404
    assert other_agent.json()["error"]["code"] == "attachment_not_found"


async def test_an_upload_is_sent_once_and_only_by_its_uploader(
        server: ServerProcess, site: Site) -> None:
    owner = await VisitorClient.connect(server, site)
    thief = await VisitorClient.connect(server, site)
    try:
        attachment = (await upload(server, site, owner.token, png_bytes())).json()["attachment"]
        await thief.send("mine now", attachments=[attachment["id"]])
        refused = await thief.recv_type("error")
        assert refused["code"] == "attachment_not_found"
        ack, _ = await owner.open_request("first", attachments=[attachment["id"]])
        await owner.send("again", conversation=ack["conversation"],
                         attachments=[attachment["id"]])
        assert (await owner.recv_type("error"))["code"] == "attachment_already_sent"
    finally:
        await owner.close()
        await thief.close()


async def test_http_fallback_and_attachments_without_text(
        server: ServerProcess, site: Site) -> None:
    token = (await start_session(server, site))["token"]
    attachment = (await upload(server, site, token, b"line 1\nline 2\n", "app.log")
                  ).json()["attachment"]
    assert attachment["content_type"] == "text/plain"
    async with server.client() as client:
        answer = await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": token, "body": "",
                                         "conversation": None, "client_msg_id": "m-1",
                                         "attachments": [attachment["id"]]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"][0]["attachments"] == [attachment]
    served = await fetch(server, attachment["url"], token)
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize("data", [
    b"<html><body><script>alert(document.cookie)</script></body></html>",
    b"\n  <svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    b"#!/bin/sh\nrm -rf /\n",
    b"GIF89a<script>alert(1)</script>",  # a GIF header that is no image
])
async def test_markup_or_script_under_an_image_name_is_refused(
        server: ServerProcess, site: Site, data: bytes) -> None:
    token = (await start_session(server, site))["token"]
    answer = await upload(server, site, token, data, name="cat.png")
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"]["code"] in {"attachment_active_content",
                                              "attachment_invalid_image"}


async def test_a_type_outside_the_allow_list_is_refused(
        server: ServerProcess, site: Site) -> None:
    token = (await start_session(server, site))["token"]
    elf = b"\x7fELF\x02\x01\x01" + bytes(200)
    answer = await upload(server, site, token, elf, name="photo.jpg")
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "attachment_type_not_allowed"


async def test_exif_and_gps_are_removed_from_images(server: ServerProcess, site: Site) -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the test has GPS
    token = (await start_session(server, site))["token"]
    attachment = (await upload(server, site, token, original, "me.jpg")).json()["attachment"]
    assert attachment["content_type"] == "image/jpeg"
    served = await fetch(server, attachment["url"], token)
    kept = Image.open(io.BytesIO(served.content))
    assert kept.size == (16, 16)
    assert not kept.getexif().get_ifd(0x8825)
    assert b"SpyCam" not in served.content
    assert attachment["size"] == len(served.content)


async def test_agents_attach_through_the_api_and_the_console(
        server: ServerProcess, site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)
    api = Api(server, site.api_token())
    console = await console_client(server, site)
    try:
        ack, _ = await visitor.open_request("Please send the manual")
        number = ack["ticket"]["number"]
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        answer = await api.client.post("/api/v1/attachments",
                                       files={"file": ("manual.pdf", pdf, "application/pdf")})
        assert answer.status_code == 201, answer.text
        attachment = answer.json()["attachment"]
        assert attachment["content_type"] == "application/pdf"
        reply = await api.client.post(f"/api/v1/tickets/{number}/messages",
                                      json={"body": "Here it is",
                                            "attachments": [attachment["id"]]})
        assert reply.status_code == 201, reply.text
        assert reply.json()["message"]["attachments"] == [attachment]
        frame = await visitor.recv_type("message")
        assert frame["attachments"] == [attachment]
        mine = await fetch(server, attachment["url"], visitor.token)
        assert mine.status_code == 200 and mine.content == pdf

        page = await console.get(f"/console/tickets/{site.key}/{number}")
        csrf = csrf_of(page.text)
        uploaded = await console.post(f"/console/attachments?site={site.key}",
                                      files={"file": ("dot.png", png_bytes("green"))},
                                      headers={"X-CSRF-Token": csrf, "Origin": server.url})
        assert uploaded.status_code == 201, uploaded.text
        note = uploaded.json()["attachment"]
        posted = await console.post(f"/console/tickets/{site.key}/{number}/note",
                                    data={"csrf": csrf, "body": "internal screenshot",
                                          "attachments": note["id"]},
                                    headers={"Origin": server.url})
        assert posted.status_code == 303, posted.text
        assert (await console.get(note["url"])).status_code == 200
        # an internal note's file is for agents only
        assert (await fetch(server, note["url"], visitor.token)).status_code == 404
    finally:
        await visitor.close()
        await api.aclose()
        await console.aclose()
