"""Attachments over HTTP (docs/api.md#attachments): uploads by visitors, API tokens and the
console, and ``GET /attachments/{id}`` for whoever may see the file.

An upload is parsed as it arrives by python-multipart's streaming parser over
``request.stream()``: the part ``file`` goes to a ``Spool`` (a temporary file, at most one
network chunk in memory), counted against the site's limit, and the answer is a 413 the
moment the limit is passed; the rest of the body is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from widget_server import attachment_content as content
from widget_server.abuse import enforce
from widget_server.attachments import ID, AttachmentTooLarge, Spool, Viewer, may_read
from widget_server.errors import NotFound, Unauthorized, Unprocessable, WidgetError
from widget_server.models import Site, StoredAttachment, Uploader
from widget_server.runtime import Runtime
from widget_server.web.bearer import authenticate, bearer_token
from widget_server.web.bodies import declared_length
from widget_server.web.console.auth import cross_origin, current_session, same_origin
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import json_error, runtime
from widget_server.web.responses import JSONResponse
from widget_server.web.session import identity_required

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

WIDGET_UPLOAD = "/api/widget/v1/attachments"
API_UPLOAD = "/api/v1/attachments"
CONSOLE_UPLOAD = "/console/attachments"
UPLOAD_PATHS = frozenset({WIDGET_UPLOAD, API_UPLOAD, CONSOLE_UPLOAD})
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
FIELD = "file"
LINGER_BYTES = 8 * 1024 * 1024  # of a refused body read and dropped before the 413
LINGER_SECONDS = 2.0


class _FilePart:
    """python-multipart callbacks: the first part named ``file`` goes to the spool."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.name: str | None = None
        self.found = False
        self._in_file = False
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        if len(self._value) + end - start > 4096:
            raise Unprocessable("a part header is too long", code="invalid_upload")
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == FIELD.encode() and not self.found:
            self.found = self._in_file = True
            filename = options.get(b"filename")
            self.name = filename.decode("utf-8", "replace") if filename else None

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.spool.feed(data[start:end])

    def _end(self) -> None:
        self._in_file = False


async def _receive(request: Request, spool: Spool) -> str | None:
    """Stream the request's ``file`` part into ``spool``; its file name."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Unprocessable("send the file as multipart/form-data in the field `file`",
                            code="invalid_upload")
    declared = declared_length(request.scope)
    if declared is not None and declared > spool.cap + MULTIPART_SLACK:
        raise AttachmentTooLarge(spool.cap)  # known before a byte of the file is read
    part = _FilePart(spool)
    parser = MultipartParser(boundary, cast("MultipartCallbacks", part.callbacks()))
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            await spool.flush()
        parser.finalize()
    except (ValueError, TypeError) as exc:  # python-multipart's parse errors
        raise Unprocessable(f"the multipart body is malformed: {str(exc)[:200]}",
                            code="invalid_upload") from None
    if not part.found:
        raise Unprocessable("the upload has no part named `file`", code="invalid_upload")
    return part.name


async def _linger(request: Request, cap: int) -> None:
    """Read and drop the rest of a refused body before answering, when its declared length
    says the rest is at most LINGER_BYTES: a client still sending when the connection closes
    gets a reset instead of our 413 (a screenshot a little too big must see why). A larger
    or chunked body is not waited for: the connection closes after the answer."""
    declared = declared_length(request.scope)
    if declared is None or declared > cap + MULTIPART_SLACK + LINGER_BYTES:
        return
    left = LINGER_BYTES
    with contextlib.suppress(TimeoutError, ClientDisconnect):
        async with asyncio.timeout(LINGER_SECONDS):
            while left > 0:
                message = await request.receive()
                left -= len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body"):
                    return


async def _upload(request: Request, site: Site, uploader: Uploader) -> Response:
    rt = runtime(request)
    spool = rt.attachments.spool(site)
    try:
        name = await _receive(request, spool)
        info = await rt.attachments.store_upload(spool, name, site, uploader)
    except AttachmentTooLarge as exc:
        spool.discard()
        await _linger(request, spool.cap)
        return json_error(413, exc.code, exc.message, headers={"Connection": "close"})
    except BaseException:
        spool.discard()
        raise
    return JSONResponse({"attachment": {
        "id": info.id, "name": info.name, "size": info.size,
        "content_type": info.content_type, "url": f"/attachments/{info.id}"}},
        status_code=201)


async def widget_upload(request: Request) -> Response:
    rt = runtime(request)
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send the visitor token as 'Authorization: Bearer TOKEN'",
                           code="invalid_token")
    key = rt.tokens.site_key(token)
    site = await rt.site(key) if key else None
    if site is None:
        raise Unauthorized("the visitor token is not valid", code="invalid_token")
    check_origin(request, site)
    visitor = await rt.token_visitor(token, site)
    if site.identity_required and not visitor.verified:
        raise identity_required()
    enforce(await rt.limits.upload(visitor.id), "too many uploads; try again later")
    return await _upload(request, site, Uploader(site.id, visitor_id=visitor.id))


async def api_upload(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    site = await runtime(request).store.get_site(site_id)
    if site is None:
        raise NotFound("the token's site is gone", code="unknown_site")
    return await _upload(request, site, Uploader(site.id, agent_id=agent.id))


async def console_upload(request: Request) -> Response:
    """``POST /console/attachments?site=KEY``: the console's session cookie and its CSRF
    token in ``X-CSRF-Token`` (the body is the file, so the token cannot be a form field)."""
    from widget_server.console_auth import csrf_matches

    rt = runtime(request)
    session = await current_session(request)
    if session is None:
        raise WidgetError("sign in first", code="not_signed_in", status=401)
    if not same_origin(request):
        raise cross_origin()
    if not csrf_matches(session.csrf_token, request.headers.get("x-csrf-token")):
        raise WidgetError("the security token is missing or stale; reload the page",
                          code="csrf_failed", status=403)
    site = await rt.site(request.query_params.get("site", ""))
    if site is None or site.id not in await rt.store.agent_site_ids(session.agent):
        raise NotFound("no such site of yours", code="site_not_found")
    return await _upload(request, site, Uploader(site.id, agent_id=session.agent.id))


async def _viewer(request: Request, rt: Runtime, site: Site) -> Viewer:
    """Who the request speaks for on ``site``: a visitor token, an API token or a console
    session; nobody (an empty Viewer) otherwise."""
    token = bearer_token(request)
    if token is not None:
        if token.startswith("wst_"):
            try:
                site_id, _ = await authenticate(request)
            except Unauthorized:
                return Viewer()
            return Viewer(site_ids=frozenset({site_id}))
        try:
            return Viewer(visitor_id=(await rt.token_visitor(token, site)).id)
        except Unauthorized:
            return Viewer()
    session = await current_session(request)
    if session is not None:
        return Viewer(site_ids=frozenset(await rt.store.agent_site_ids(session.agent)))
    return Viewer()


def file_headers(found: StoredAttachment) -> dict[str, str]:
    info = found.info
    disposition = "inline" if info.content_type in content.INLINE_TYPES else "attachment"
    ascii_name = info.name.encode("ascii", "replace").decode().replace("?", "_")
    return {
        "Content-Type": info.content_type + ("; charset=utf-8"
                                             if info.content_type == "text/plain" else ""),
        "Content-Length": str(info.size),
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\";"
                               f" filename*=UTF-8''{quote(info.name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=300",
        "Referrer-Policy": "no-referrer",
        # the widget reads the file with fetch() from the host's page: let it see the name
        "Access-Control-Expose-Headers": "Content-Disposition",
    }


async def serve(request: Request) -> Response:
    """``GET /attachments/{id}``: the file to whoever may see it, else 404 (never 403: an
    id that exists tells nothing to whoever may not see it)."""
    rt = runtime(request)
    attachment_id: str = request.path_params["id"]
    missing = NotFound("no such attachment", code="attachment_not_found")
    found = await rt.store.attachment(attachment_id) if ID.fullmatch(attachment_id) else None
    if found is None:
        raise missing
    link = request.query_params.get("link")
    if link is not None:
        if not rt.attachments.link_allows(link, attachment_id):
            raise missing
    else:
        site = await rt.store.get_site(found.site_id)
        if site is None or not may_read(found, await _viewer(request, rt, site)):
            raise missing
    chunks = rt.attachments.blobs.read(found.storage_key)
    try:
        first = await anext(chunks)
    except (FileNotFoundError, StopAsyncIteration):
        raise NotFound("the file of this attachment is gone",
                       code="attachment_not_found") from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), headers=file_headers(found))


routes = [
    Route(WIDGET_UPLOAD, with_cors(widget_upload), methods=["POST"]),
    Route(WIDGET_UPLOAD, preflight, methods=["OPTIONS"]),
    Route(API_UPLOAD, api_upload, methods=["POST"]),
    Route(CONSOLE_UPLOAD, console_upload, methods=["POST"]),
    Route("/attachments/{id}", with_cors(serve), methods=["GET"]),
    Route("/attachments/{id}", preflight, methods=["OPTIONS"]),
]
