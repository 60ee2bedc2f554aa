"""The widget's files: /widget.js (the loader), versioned files under /widget/, and /demo."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from widget_server.errors import NotFound
from widget_server.web.errors import runtime

LOADER_CACHE = "public, max-age=300, stale-while-revalidate=86400"
DEMO_SITE_SETTING = "demo_site_key"


def static_dir() -> Path:
    return Path(str(resources.files("widget_static")))


def examples_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "examples", package.parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("examples/ is missing from this installation")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def load(cls, path: Path, media_type: str) -> Asset:
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, gzip.compress(body, 9, mtime=0), etag, media_type)

    def response(self, request: Request, cache_control: str) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


_loader: Asset | None = None


async def widget_js(request: Request) -> Response:
    global _loader
    if _loader is None:
        _loader = Asset.load(static_dir() / "widget.js", "text/javascript")
    return _loader.response(request, LOADER_CACHE)


async def demo_page(request: Request) -> Response:
    rt = runtime(request)
    site_key = await rt.store.get_setting(DEMO_SITE_SETTING)
    if site_key is None:
        raise NotFound("no demo site here; start the server with `widget-server demo`",
                       code="no_demo_site")
    server = f"{request.url.scheme}://{request.url.netloc}"
    page = (examples_dir() / "host_page.html").read_text("utf-8")
    page = page.replace("https://support.example.com", server).replace("SITE_KEY", site_key)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


routes = [
    Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
    Route("/demo", demo_page, methods=["GET"]),
    Mount("/widget", app=StaticFiles(directory=static_dir()), name="widget"),
]
