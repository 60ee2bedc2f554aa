"""The widget's files: /widget.js (the loader) and versioned files under /widget/.

The loader is small and revalidated often; it names the current version, and the panel files
under /widget/<version>/ are then cached for a year. Files are served compacted (comment
lines and indentation dropped) and gzipped once at first use; the readable source in
widget_static/ stays the source.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.errors import NotFound

LOADER_CACHE = "public, max-age=300, stale-while-revalidate=86400"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
# the panel's ES modules (panel.js imports all but those loaded when first needed,
# article.js, access.js, mail.js, rating.js, markdown.js, compose.js, fallback.js and
# attach.js, loaded on the first attachment) and its stylesheet
PANEL_FILES = {name: "text/javascript" for name in (
    "panel.js", "dom.js", "outbox.js", "connection.js", "views.js", "articles.js", "article.js",
    "access.js", "mail.js", "rating.js", "markdown.js", "compose.js", "fallback.js",
    "attach.js")} | {"panel.css": "text/css"}
PLAIN_FILES = {"help.css": "text/css"}
ICON_FILES = {"favicon.svg": "image/svg+xml"}
CONSOLE_FILES = {"console.js": "text/javascript", "console-attach.js": "text/javascript",
                 "console.css": "text/css",
                 "console-admin.js": "text/javascript", "console-admin.css": "text/css",
                 "console-sla.css": "text/css", "console-workspace.js": "text/javascript",
                 "console-markdown.js": "text/javascript", "markdown.js": "text/javascript",
                 "console-design.css": "text/css"}

_BLOCK_COMMENT = re.compile(r"^\s*/\*.*?\*/\s*$", re.MULTILINE | re.DOTALL)
# CSS only: the space around punctuation, which no selector or value of ours needs (a space
# before ":" is a descendant combinator and stays)
_CSS_SPACE = re.compile(r"\s*([{};,>])\s*|(:)\s+")


def static_dir() -> Path:
    return Path(str(resources.files("widget_static")))


def examples_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "examples", package.parent / "examples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("examples/ is missing from this installation")


def compact(source: str) -> str:
    """Drop whole-line comments, indentation and blank lines; nothing else changes."""
    source = _BLOCK_COMMENT.sub("", source)
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def compact_css(source: str) -> str:
    """``compact``, then the spaces around CSS punctuation: the panel's styles count in the
    widget's first-open budget."""
    return _CSS_SPACE.sub(lambda match: match.group(1) or match.group(2), compact(source))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether gzip is acceptable: listed (or covered by *) with a q-value above zero."""
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            weights[name.strip()] = weight
    return weights.get("gzip", weights.get("*", 0.0)) > 0


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def of(cls, text: str, media_type: str) -> Asset:
        body = text.encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, gzip.compress(body, 9, mtime=0), etag, media_type)

    def response(self, request: Request, headers: dict[str, str]) -> Response:
        headers = {"ETag": self.etag, "Vary": "Accept-Encoding", **headers}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(self.gzipped, media_type=self.media_type,
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.body, media_type=self.media_type, headers=headers)


@dataclass(frozen=True)
class WidgetAssets:
    version: str
    loader: Asset
    panel: dict[str, Asset]


@cache
def widget_assets() -> WidgetAssets:
    folder = static_dir()
    sources = {name: (compact_css if name.endswith(".css") else compact)(
        (folder / name).read_text("utf-8")) for name in PANEL_FILES}
    loader_source = compact((folder / "widget.js").read_text("utf-8"))
    digest = hashlib.sha256(loader_source.encode())
    for name in sorted(sources):
        digest.update(sources[name].encode())
    version = digest.hexdigest()[:12]
    return WidgetAssets(
        version=version,
        loader=Asset.of(loader_source.replace("__VERSION__", version), "text/javascript"),
        panel={name: Asset.of(text, PANEL_FILES[name]) for name, text in sources.items()},
    )


async def widget_js(request: Request) -> Response:
    return widget_assets().loader.response(
        request, {"Cache-Control": LOADER_CACHE, "Access-Control-Allow-Origin": "*"})


async def versioned_file(request: Request) -> Response:
    assets = widget_assets()
    asset = assets.panel.get(request.path_params["name"])
    if asset is None:
        raise NotFound("no such widget file", code="not_found")
    # an old loader still gets working files, but they must not be cached under its version
    current = request.path_params["version"] == assets.version
    return asset.response(request, {
        "Cache-Control": VERSIONED_CACHE if current else "no-cache",
        "Access-Control-Allow-Origin": "*",  # module scripts load cross-origin with CORS
    })


async def plain_file(request: Request) -> Response:
    """Unversioned files under /widget/ (the Help Form's stylesheet), from an allow-list."""
    name = request.path_params["name"]
    if name not in PLAIN_FILES:
        raise NotFound("no such widget file", code="not_found")
    return plain_asset(name).response(request, {"Cache-Control": "public, max-age=3600"})


async def console_file(request: Request) -> Response:
    """The console's own script and stylesheet, same-origin only."""
    name = request.path_params["name"]
    if name not in CONSOLE_FILES:
        raise NotFound("no such console file", code="not_found")
    return plain_asset(name).response(request, {"Cache-Control": "no-cache"})


@cache
def plain_asset(name: str) -> Asset:
    kinds = {**PLAIN_FILES, **CONSOLE_FILES, **ICON_FILES}
    return Asset.of((static_dir() / name).read_text("utf-8"), kinds[name])


async def favicon(request: Request) -> Response:
    """The server's icon (an SVG): browsers ask for /favicon.ico, and pages link to it."""
    return plain_asset("favicon.svg").response(request, {"Cache-Control": "public, max-age=86400"})


routes = [
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
    Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
    Route("/widget/{version:str}/{name:str}", versioned_file, methods=["GET", "HEAD"]),
    Route("/widget/{name:str}", plain_file, methods=["GET", "HEAD"]),
    Route("/console/static/{name:str}", console_file, methods=["GET", "HEAD"]),
]
