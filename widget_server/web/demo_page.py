"""The demo's host page at /demo, and / for a person who opens the server's address.

/demo is examples/host_page.html with this server's address and the demo site's key, under a
strict Content-Security-Policy. ``/demo?customer=1`` is the page a host application renders
for a signed-in user: the server signs the demo customer's id with the site's identity
secret (docs/identity.md), as a real host backend would, so Access and Security can be tried
without computing an HMAC by hand; ``/demo?customer=0`` signs the widget out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from widget_server.config import DEMO_SITE_SETTING
from widget_server.errors import NotFound
from widget_server.web.errors import runtime
from widget_server.web.static import examples_dir

DEMO_CUSTOMER = {"id": "demo-customer-1", "name": "Dee Demo"}
QUEUE_STUB_END = "</script>\n"
CONTROLS = """<section class="card" id="demo-customer"><h2>Try it as a customer</h2>
      <div>The widget below talks to this server. A signed-in customer of the product can
      also grant support access under Access and Security.</div>
      <div><a href="/demo?customer=1">Sign in as a demo customer</a>
      <a href="/demo?customer=0">Sign out</a></div>
    </section>
  </main>"""


def customer_script(identity_secret: str) -> str:
    """The host side of a signed-in page: the user's id signed with the site's secret."""
    digest = hmac.new(identity_secret.encode(), DEMO_CUSTOMER["id"].encode(),
                      hashlib.sha256).hexdigest()
    user = json.dumps({**DEMO_CUSTOMER, "hash": digest}).replace("</", "<\\/")
    return f'<script>HelpWidget("identify", {user});</script>'


async def demo_page(request: Request) -> Response:
    rt = runtime(request)
    site_key = await rt.store.get_setting(DEMO_SITE_SETTING)
    site = await rt.store.get_site_by_key(site_key) if site_key else None
    if site_key is None or site is None:
        raise NotFound("no demo site here; start the server with `widget-server demo`",
                       code="no_demo_site")
    server = f"{request.url.scheme}://{request.url.netloc}"
    page = (examples_dir() / "host_page.html").read_text("utf-8")
    page = page.replace("https://support.example.com", server).replace("SITE_KEY", site_key)
    page = page.replace("  </main>", "    " + CONTROLS, 1)
    customer = request.query_params.get("customer")
    signed = {"1": customer_script(site.identity_secret),
              "0": '<script>HelpWidget("logout");</script>'}.get(customer or "")
    if signed:  # after the queue stub, before the loader: the loader replays it
        stub = page.index("<script>window.HelpWidget")
        cut = page.index(QUEUE_STUB_END, stub) + len(QUEUE_STUB_END)
        page = page[:cut] + "  " + signed + "\n" + page[cut:]
    return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                       **demo_headers(request, page)})


def _hashes(page: str, tag: str) -> str:
    """CSP sources for the page's inline ``tag`` elements, by the hash of each."""
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
    return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest())
                    .decode() + "'" for text in found)


def demo_headers(request: Request, page: str) -> dict[str, str]:
    """The demo is a host page under a strict policy: its only inline code, the snippet's
    queue stub and its stylesheet, allowed by hash; everything else from this server."""
    socket = f"{'wss' if request.url.scheme == 'https' else 'ws'}://{request.url.netloc}"
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self' {_hashes(page, 'script')}; "
            f"style-src 'self' {_hashes(page, 'style')}; img-src 'self' data:; "
            f"connect-src 'self' {socket}; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'; object-src 'none'"),
        "Referrer-Policy": "same-origin",
    }


def wants_json(request: Request) -> bool:
    """An API client (JSON asked for, HTML not): it keeps getting the JSON 404."""
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


async def root(request: Request) -> Response:
    """A person at / goes to the demo when there is one, else to the help centre."""
    if wants_json(request):
        raise NotFound("no such route; the API is under /api/v1", code="not_found")
    demo = await runtime(request).store.get_setting(DEMO_SITE_SETTING)
    return RedirectResponse("/demo" if demo else "/help", status_code=302,
                            headers={"Cache-Control": "no-store"})


routes = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/demo", demo_page, methods=["GET"]),
]
