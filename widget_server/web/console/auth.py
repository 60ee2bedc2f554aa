"""Console sign-in, sessions in a signed cookie, CSRF checks and the strict CSP with nonces.

The cookie holds only a signed random session id; the session (agent, CSRF token, expiry,
revocation) lives in the database, so signing out or disabling an agent takes effect at once.
The sign-in form is bound to a pre-session: a random nonce in a cookie of its own, which the
form's expiring token must name, so another site cannot sign a browser in (login CSRF).
Every POST must also come from this server's own pages (its Origin, else its Referer).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.client_address import client_address
from widget_server.console_auth import (
    SESSION_LIFETIME,
    BadCredentials,
    SignIn,
    TooManyAttempts,
    csrf_matches,
)
from widget_server.errors import Forbidden, NotFound, WidgetError
from widget_server.models import AgentSession, Site
from widget_server.runtime import Runtime
from widget_server.web.forms import read_form
from widget_server.web.templating import render

COOKIE = "widget_console"
SALT = "widget-server.console-session.v1"
LOGIN_SALT = "widget-server.console-login.v2"  # v2: bound to the pre-session nonce, expiring
LOGIN_COOKIE = "widget_console_login"  # the pre-session: a signed random nonce
LOGIN_COOKIE_SALT = "widget-server.console-login-nonce.v1"
LOGIN_FORM_MAX_AGE = 3600  # seconds a sign-in form may stay open
Handler = Callable[[Request], Awaitable[Response]]


def _rt(conn: HTTPConnection) -> Runtime:
    value: Runtime = conn.app.state.runtime
    return value


def _signer(rt: Runtime, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(rt.secret_keys, salt=salt)


def _timed_signer(rt: Runtime, salt: str) -> URLSafeTimedSerializer:
    clock = rt.clock

    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return URLSafeTimedSerializer(rt.secret_keys, salt=salt, signer=ClockSigner)


def own_origins(request: HTTPConnection) -> set[str]:
    """This server's origins: the host the request was sent to (over http or https: a proxy
    that ends TLS may not say which) and the public URL's."""
    host = request.headers.get("host", "").lower()
    found = {f"http://{host}", f"https://{host}"} if host else set()
    public = urlsplit(_rt(request).settings.base_url)
    found.add(f"{public.scheme}://{public.netloc}".lower())
    return found


def same_origin(request: HTTPConnection) -> bool:
    """Whether a POST comes from this server's own pages: its ``Origin``, or when a browser
    sends none its ``Referer``, must be one of ``own_origins``. Browsers send an Origin with
    every cross-site POST, so a request with neither comes from no other site's page (the
    session's CSRF token, or the sign-in's pre-session, still guards it)."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.strip().lower() in own_origins(request)


def cross_origin() -> Forbidden:
    return Forbidden("this request did not come from this server's own console pages",
                     code="cross_origin")


async def current_session(conn: HTTPConnection) -> AgentSession | None:
    raw = conn.cookies.get(COOKIE)
    if not raw:
        return None
    rt = _rt(conn)
    try:
        session_id = _signer(rt, SALT).loads(raw)
    except BadSignature:
        return None
    return await rt.store.agent_session(str(session_id)) if isinstance(session_id, str) else None


def security_headers(request: Request, nonce: str) -> dict[str, str]:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
            f"img-src 'self' data: blob:; connect-src 'self' {scheme}://{request.url.netloc}; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """Render a console page with the session, its CSRF token and a fresh script nonce."""
    nonce = secrets.token_urlsafe(16)
    session: AgentSession | None = getattr(request.state, "session", None)
    return render(template, status, security_headers(request, nonce), nonce=nonce,
                  session=session, agent=session.agent if session else None,
                  csrf=session.csrf_token if session else "", request=request,
                  presence=getattr(request.state, "presence", "online"),
                  **{"mail_on": _rt(request).settings.smtp_url is not None, **context})


def console_page(handler: Handler) -> Handler:
    """Only for signed-in agents; unsafe methods must also carry the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            if request.method == "GET":
                return RedirectResponse(f"/console/login?next={quote(request.url.path)}", 303)
            raise WidgetError("sign in first", code="not_signed_in", status=401)
        request.state.session = session
        # the header's availability switch shows the agent's own setting on every page
        request.state.presence = (await _rt(request).store.presence_of(
            [session.agent.id]))[session.agent.id]
        if request.method not in {"GET", "HEAD"}:
            if not same_origin(request):
                raise cross_origin()
            form = await read_form(request)
            given = form.get("csrf") or request.headers.get("x-csrf-token")
            if not csrf_matches(session.csrf_token, given if isinstance(given, str) else None):
                raise Forbidden("the form's security token is missing or stale; reload the page",
                                code="csrf_failed")
        try:
            return await handler(request)
        except WidgetError as exc:
            if exc.status in {401, 403, 404}:
                return page(request, "console/error.html", exc.status, message=exc.message)
            raise

    return endpoint


def admin_page(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        if not request.state.session.agent.is_admin:
            raise Forbidden("only admins may open this page", code="admins_only")
        return await handler(request)

    return console_page(endpoint)


async def site_for_agent(request: Request, site_key: str) -> Site:
    """The site, if the signed-in agent works on it: 404 unknown, 403 not a member."""
    rt = _rt(request)
    site = await rt.store.get_site_by_key(site_key)
    if site is None:
        raise NotFound("no such site", code="site_not_found")
    session: AgentSession = request.state.session
    if site.id not in await rt.store.agent_site_ids(session.agent):
        raise Forbidden("you do not work on this site", code="not_a_member")
    return site


async def chosen_site(request: Request) -> tuple[Site, list[Site]]:
    """The site a page is about (``?site=KEY``, else the agent's first) and the agent's sites."""
    rt = _rt(request)
    session: AgentSession = request.state.session
    allowed = await rt.store.agent_site_ids(session.agent)
    sites = [site for site in await rt.store.list_sites() if site.id in allowed]
    if not sites:
        raise NotFound("you do not work on any site yet", code="no_site")
    key = request.query_params.get("site")
    return (await site_for_agent(request, key) if key else sites[0]), sites


def _login_nonce(request: Request) -> str | None:
    """The nonce of this browser's pre-session cookie, if it carries a genuine one."""
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw:
        return None
    try:
        nonce = _signer(_rt(request), LOGIN_COOKIE_SALT).loads(raw)
    except BadSignature:
        return None
    return nonce if isinstance(nonce, str) else None


async def login_form(request: Request, *, status: int = 200, error: str | None = None,
                     email: str = "") -> Response:
    """The sign-in form, bound to this browser's pre-session (made here when it has none)."""
    rt = _rt(request)
    nonce = _login_nonce(request) or secrets.token_urlsafe(16)
    token = _timed_signer(rt, LOGIN_SALT).dumps(nonce)
    response = page(request, "console/login.html", status, error=error, email=email,
                    login_token=token, next=_safe_next(request.query_params.get("next")))
    response.set_cookie(
        LOGIN_COOKIE, _signer(rt, LOGIN_COOKIE_SALT).dumps(nonce), max_age=LOGIN_FORM_MAX_AGE,
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
        path="/console/login")
    return response


def _login_refused(request: Request) -> str | None:
    """Why this sign-in POST is refused before its password is looked at, or None."""
    if not same_origin(request):
        return "This sign-in did not come from this server's sign-in page."
    return None


def _check_login_token(request: Request, token: str) -> str | None:
    """Why the form's token is not good for this browser now, or None."""
    try:
        nonce = _timed_signer(_rt(request), LOGIN_SALT).loads(token, max_age=LOGIN_FORM_MAX_AGE)
    except SignatureExpired:
        return "The sign-in form expired; please try again."
    except BadSignature:
        return "The sign-in form is not valid; please try again."
    expected = _login_nonce(request)
    if expected is None or not isinstance(nonce, str) or not csrf_matches(expected, nonce):
        return ("The sign-in form was not opened in this browser, or it expired; "
                "please try again.")
    return None


def _safe_next(target: str | None) -> str:
    """Only paths of the console itself: never an open redirect."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


async def login_page(request: Request) -> Response:
    if await current_session(request) is not None:
        return RedirectResponse("/console", 303)
    return await login_form(request)


async def login(request: Request) -> Response:
    rt = _rt(request)
    refused = _login_refused(request)
    if refused is not None:
        return await login_form(request, status=403, error=refused)
    form = await read_form(request)
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    stale = _check_login_token(request, str(form.get("login_token", "")))
    if stale is not None:
        return await login_form(request, status=403, email=email, error=stale)
    client = client_address(request, rt.settings.trusted_proxies)
    try:
        signer = SignIn(rt.store, rt.clock, rt.secret_keys[-1], rt.settings.login_free_failures,
                        timedelta(seconds=rt.settings.login_max_lockout))
        _, session_id = await signer.sign_in(email, password, client)
    except TooManyAttempts as exc:
        response = await login_form(request, status=429, email=email, error=exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except BadCredentials as exc:
        return await login_form(request, status=401, email=email, error=exc.message)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), 303)
    response.set_cookie(
        COOKIE, _signer(rt, SALT).dumps(session_id), max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")  # the pre-session is used up
    return response


@console_page
async def logout(request: Request) -> Response:
    session: AgentSession = request.state.session
    await _rt(request).store.revoke_agent_session(session.id)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


routes = [
    Route("/console/login", login_page, methods=["GET"]),
    Route("/console/login", login, methods=["POST"]),
    Route("/console/logout", logout, methods=["POST"]),
]
