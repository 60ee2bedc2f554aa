"""GET /widget.js and /healthz, the app in process (docs/api.md)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from tests.inprocess import InProcess

pytestmark = pytest.mark.anyio

IDENTITY = {"Accept-Encoding": "identity"}


async def get_raw(inprocess: InProcess, path: str, headers: dict[str, str]
                  ) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent on the wire (no transparent decoding)."""
    async with inprocess.client() as client, \
            client.stream("GET", path, headers=headers) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_loader_is_cacheable_javascript(inprocess: InProcess) -> None:
    response, body = await get_raw(inprocess, "/widget.js", IDENTITY)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in {
        "text/javascript", "application/javascript"}
    assert "content-encoding" not in response.headers
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    cache_control = response.headers["cache-control"]
    assert "max-age=" in cache_control
    assert "no-store" not in cache_control
    assert "accept-encoding" in response.headers.get("vary", "").lower()
    assert body and b"HelpWidget" in body
    assert int(response.headers["content-length"]) == len(body)

    again, body_again = await get_raw(inprocess, "/widget.js", IDENTITY)
    assert again.headers["etag"] == etag
    assert body_again == body


async def test_if_none_match_answers_304(inprocess: InProcess) -> None:
    first, _ = await get_raw(inprocess, "/widget.js", IDENTITY)
    etag = first.headers["etag"]
    response, body = await get_raw(inprocess, "/widget.js", {**IDENTITY, "If-None-Match": etag})
    assert response.status_code == 304
    assert body == b""
    assert response.headers["etag"] == etag
    assert "cache-control" in response.headers

    stale, stale_body = await get_raw(inprocess, "/widget.js",
                                      {**IDENTITY, "If-None-Match": '"something-else"'})
    assert stale.status_code == 200
    assert stale_body == (await get_raw(inprocess, "/widget.js", IDENTITY))[1]


async def test_gzip_when_accepted(inprocess: InProcess) -> None:
    _, plain = await get_raw(inprocess, "/widget.js", IDENTITY)
    response, raw = await get_raw(inprocess, "/widget.js", {"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == plain
    assert len(raw) <= 2048  # the loader stays within the 1-2 KB gzipped budget
    assert response.headers["etag"] == (await get_raw(inprocess, "/widget.js", IDENTITY))[0] \
        .headers["etag"]


async def test_head_of_the_loader(inprocess: InProcess) -> None:
    async with inprocess.client() as client:
        response = await client.head("/widget.js", headers=IDENTITY)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["etag"]


async def test_healthz(inprocess: InProcess) -> None:
    async with inprocess.client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"].startswith("application/json")


async def test_gzip_refused_with_q_zero_is_not_sent(inprocess: InProcess) -> None:
    _, plain = await get_raw(inprocess, "/widget.js", IDENTITY)
    response, raw = await get_raw(inprocess, "/widget.js",
                                  {"Accept-Encoding": "gzip;q=0, identity"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert raw == plain
