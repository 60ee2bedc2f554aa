"""Console pages for admins: sites (origins, tiers, identity secret, embed snippet), agents
and REST API tokens.

Every route is for signed-in admins only and every POST carries the session's CSRF token
(``admin_page``). Successful changes redirect (303) to a page that names what was done;
new passwords and tokens are rendered once, directly, never stored in the clear. Invalid
input re-renders the form with 422 and a message next to each field.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.api_tokens import hash_api_token, new_api_token
from widget_server.attachment_content import DEFAULT_TYPES
from widget_server.embed import snippet
from widget_server.errors import NotFound
from widget_server.mail_settings import parse_support_address
from widget_server.models import IDENTITY_MODES, Agent, AgentSession, Site
from widget_server.numbers import parse_int
from widget_server.origins import parse_origin
from widget_server.passwords import hash_password, new_password
from widget_server.store import Store
from widget_server.text import one_line
from widget_server.web.console.auth import admin_page, page
from widget_server.web.forms import read_form

Errors = dict[str, str]

NOTICES = {
    "site-added": "The site was added. Paste its embed snippet into the host's pages.",
    "site-saved": "The site was saved.",
    "secret-rotated": "The identity secret was rotated. Host backends must sign user ids "
                      "with the new secret; hashes made with the old one are accepted only "
                      "until the end of the grace period shown below.",
    "agent-saved": "The agent was saved.",
    "agent-disabled": "The agent was disabled and signed out everywhere.",
    "agent-enabled": "The agent was enabled.",
    "token-revoked": "The API token was revoked.",
    "mail-saved": "The sender name was saved; mails queued from now on use it.",
    "ratings-saved": "The satisfaction rating setting was saved.",
    "attachments-saved": "The attachment rules were saved; uploads from now on follow them.",
}
ROLES = ("agent", "admin")
ROTATION_GRACE_HOURS = 24  # the previous identity secret stays valid this long
MAX_NAME = 100
MAX_TIERS = 9
MAX_ORIGINS = 50
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _store(request: Request) -> Store:
    store: Store = request.app.state.runtime.store
    return store


def _me(request: Request) -> Agent:
    session: AgentSession = request.state.session
    return session.agent


def _done(path: str, what: str) -> Response:
    return RedirectResponse(f"{path}?done={what}", 303)


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _ints(values: list[Any]) -> list[int]:
    return [i for i in map(parse_int, values) if i is not None]


def _name(value: str, errors: Errors, field: str = "name") -> str:
    value = one_line(value)
    if not value:
        errors[field] = "Enter a name."
    elif len(value) > MAX_NAME:
        errors[field] = f"Use at most {MAX_NAME} characters."
    return value


def _origins(text: str, errors: Errors) -> list[str]:
    found: list[str] = []
    bad: list[str] = []
    for item in re.split(r"[\s,]+", text):
        if item:
            try:
                found.append(parse_origin(item))
            except ValueError:
                bad.append(item)
    if bad:
        errors["origins"] = ("Not an origin like https://app.example.com (a scheme, a host "
                             "and an optional port, no path): " + ", ".join(bad[:5]))
    elif not found:
        errors["origins"] = "Add at least one origin, like https://app.example.com."
    elif len(set(found)) > MAX_ORIGINS:
        errors["origins"] = f"Use at most {MAX_ORIGINS} origins."
    return sorted(set(found))


def _tier_names(text: str, errors: Errors) -> list[str]:
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        errors["tiers"] = "Name at least one tier, e.g. First level."
    elif len(names) > MAX_TIERS:
        errors["tiers"] = f"Use at most {MAX_TIERS} tiers."
    elif any(len(name) > MAX_NAME for name in names):
        errors["tiers"] = f"Use at most {MAX_NAME} characters per tier name."
    elif len({name.casefold() for name in names}) != len(names):
        errors["tiers"] = "Give each tier a different name."
    return names


async def _name_taken(store: Store, name: str, site_id: int | None = None) -> bool:
    return any(site.name.casefold() == name.casefold() and site.id != site_id
               for site in await store.list_sites())


def _base_url(request: Request) -> str:
    public: str | None = request.app.state.runtime.settings.public_url
    return public.rstrip("/") if public else f"{request.url.scheme}://{request.url.netloc}"


# -- sites


async def _sites_page(request: Request, status: int = 200, errors: Errors | None = None,
                      values: dict[str, str] | None = None) -> Response:
    return page(request, "console/admin_sites.html", status, sites=await _store(request)
                .list_sites(), errors=errors or {}, values=values or {},
                notice=_notice(request))


@admin_page
async def sites(request: Request) -> Response:
    if request.method != "POST":
        return await _sites_page(request)
    store, form = _store(request), await read_form(request)
    errors: Errors = {}
    name = _name(_text(form, "name"), errors)
    origins = _origins(_text(form, "origins"), errors)
    if "name" not in errors and await _name_taken(store, name):
        errors["name"] = "Another site has this name."
    if errors:
        return await _sites_page(request, 422, errors,
                                 {"name": name, "origins": _text(form, "origins")})
    site, created = await store.ensure_site(name, origins)
    if not created:  # added concurrently under the same name; ensure_site merged origins
        return await _sites_page(request, 422, {"name": "Another site has this name."},
                                 {"name": name, "origins": _text(form, "origins")})
    return _done(f"/console/admin/sites/{site.key}", "site-added")


async def _site(request: Request) -> Site:
    site = await _store(request).get_site_by_key(request.path_params["key"])
    if site is None:
        raise NotFound("no such site", code="site_not_found")
    return site


async def _site_values(request: Request, site: Site) -> dict[str, str]:
    """What the site page's forms show: the site as stored."""
    return {"name": site.name, "origins": "\n".join(site.allowed_origins),
            "tiers": "\n".join(site.tier_names), "identity_mode": site.identity_mode,
            "sender_name": site.mail_sender_name or "",
            "support_address": await _store(request).support_address(site.id) or "",
            "attachment_max_mb": str(site.attachment_max_bytes // (1024 * 1024)),
            "attachment_max_files": str(site.attachment_max_files),
            "attachment_types": ",".join(site.attachment_types or DEFAULT_TYPES),
            "attachment_keep_metadata": "on" if site.attachment_keep_metadata else ""}


async def _site_page(request: Request, site: Site, status: int = 200,
                     errors: Errors | None = None, values: dict[str, str] | None = None
                     ) -> Response:
    values = values or await _site_values(request, site)
    return page(request, "console/admin_site.html", status, site=site, values=values,
                errors=errors or {}, snippet=snippet(site, _base_url(request)),
                attachment_types=DEFAULT_TYPES,
                notice=_notice(request), identity_modes=IDENTITY_MODES,
                previous_until=_previous_until(request, site))


def _previous_until(request: Request, site: Site) -> str | None:
    """When the previous identity secret stops being accepted; None if it no longer is."""
    now = request.app.state.runtime.clock.now()
    if site.previous_identity_secret is None or site.previous_secret_until is None or \
            site.previous_secret_until <= now:
        return None
    return site.previous_secret_until.strftime("%Y-%m-%d %H:%M UTC")


@admin_page
async def site_page(request: Request) -> Response:
    site = await _site(request)
    if request.method != "POST":
        return await _site_page(request, site)
    store, form = _store(request), await read_form(request)
    errors: Errors = {}
    name = _name(_text(form, "name"), errors)
    origins = _origins(_text(form, "origins"), errors)
    tiers = _tier_names(_text(form, "tiers"), errors)
    identity_mode = _text(form, "identity_mode") or site.identity_mode
    if identity_mode not in IDENTITY_MODES:
        errors["identity_mode"] = "Choose optional or required."
    if "name" not in errors and await _name_taken(store, name, site.id):
        errors["name"] = "Another site has this name."
    support = None
    try:
        support = parse_support_address(_text(form, "support_address"))
    except ValueError:
        errors["support_address"] = "Enter an address like help@acme.test, or leave it empty."
    if support is not None and await store.support_site(support) not in {None, site.id}:
        errors["support_address"] = "Another site has this support address."
    if errors:
        return await _site_page(request, site, 422, errors, {
            "name": name, "origins": _text(form, "origins"), "tiers": _text(form, "tiers"),
            "identity_mode": identity_mode, "support_address": _text(form, "support_address"),
            "sender_name": site.mail_sender_name or ""})
    await store.update_site(site.id, name=name, origins=origins, tier_names=tiers,
                            identity_mode=identity_mode)
    await store.set_support_address(site.id, support)
    return _done(f"/console/admin/sites/{site.key}", "site-saved")


@admin_page
async def rotate_secret(request: Request) -> Response:
    site = await _site(request)
    if _text(await read_form(request), "confirm") != "yes":
        return await _site_page(request, site, 422, {
            "confirm": "Tick the box to confirm: every identified visitor must be signed "
                       "again with the new secret."})
    await _store(request).update_site(site.id, rotate_secret=True,
                                      grace=timedelta(hours=ROTATION_GRACE_HOURS))
    return _done(f"/console/admin/sites/{site.key}", "secret-rotated")


@admin_page
async def site_mail(request: Request) -> Response:
    """The site's sender name: the From display name of its mails (empty: the site's name)."""
    site = await _site(request)
    sender_name = one_line(_text(await read_form(request), "sender_name"))
    if len(sender_name) > MAX_NAME:
        return await _site_page(request, site, 422, {
            "sender_name": f"Use at most {MAX_NAME} characters."}, {
            **await _site_values(request, site), "sender_name": sender_name})
    await _store(request).set_mail_sender_name(site.id, sender_name or None)
    return _done(f"/console/admin/sites/{site.key}", "mail-saved")


@admin_page
async def site_attachments(request: Request) -> Response:
    """The site's attachment rules: size, files per message, types, image metadata."""
    site = await _site(request)
    form = await read_form(request)
    ceiling = request.app.state.runtime.settings.max_upload_bytes // (1024 * 1024)
    errors: Errors = {}
    max_mb = parse_int(_text(form, "attachment_max_mb"), 1, max(ceiling, 1))
    if max_mb is None:
        errors["attachment_max_mb"] = f"Enter a whole number of MB from 1 to {ceiling}."
    max_files = parse_int(_text(form, "attachment_max_files"), 1, 100)
    if max_files is None:
        errors["attachment_max_files"] = "Enter a whole number from 1 to 100."
    types = tuple(t for t in DEFAULT_TYPES if t in form.getlist("attachment_types"))
    if not types:
        errors["attachment_types"] = "Allow at least one type."
    keep = _text(form, "attachment_keep_metadata") == "on"
    if errors or max_mb is None or max_files is None:
        return await _site_page(request, site, 422, errors, {
            **await _site_values(request, site),
            "attachment_max_mb": _text(form, "attachment_max_mb"),
            "attachment_max_files": _text(form, "attachment_max_files"),
            "attachment_types": ",".join(types), "attachment_keep_metadata": "on" if keep
            else ""})
    await _store(request).set_attachment_rules(
        site.id, max_mb * 1024 * 1024, max_files,
        None if types == DEFAULT_TYPES else types, keep)
    return _done(f"/console/admin/sites/{site.key}", "attachments-saved")


# -- agents


def _tier_options(all_sites: list[Site], agents: list[Agent]) -> list[tuple[int, str]]:
    """Tier numbers with the names sites give them, e.g. (2, "Second level / Back-up")."""
    count = max([len(site.tier_names) for site in all_sites] + [a.tier for a in agents] + [2])
    options = []
    for number in range(1, count + 1):
        names = dict.fromkeys(site.tier_names[number - 1] for site in all_sites
                              if len(site.tier_names) >= number)
        options.append((number, f"{number} · {' / '.join(names)}" if names else str(number)))
    return options


async def _agents_page(request: Request, status: int = 200, errors: Errors | None = None,
                       failed: str = "", values: dict[str, Any] | None = None) -> Response:
    store = _store(request)
    all_sites = await store.list_sites()
    members = await store.list_agents()
    return page(request, "console/admin_agents.html", status, members=members,
                sites=all_sites, site_names={site.id: site.name for site in all_sites},
                tiers=_tier_options(all_sites, [a for a, _ in members]), roles=ROLES,
                errors=errors or {}, failed=failed, values=values or {},
                me=_me(request), notice=_notice(request))


async def _agent_choices(request: Request, form: FormData, errors: Errors
                         ) -> tuple[str, int, list[int]]:
    """Role, tier and sites from a form, checked against what exists."""
    store = _store(request)
    all_sites = await store.list_sites()
    role = _text(form, "role")
    if role not in ROLES:
        errors["role"] = "Choose agent or admin."
    tier_text = _text(form, "tier")
    options = _tier_options(all_sites, [a for a, _ in await store.list_agents()])
    tier = parse_int(tier_text) or 0
    if not 1 <= tier <= len(options):
        errors["tier"] = f"Choose a tier from 1 to {len(options)}."
    wanted = _ints(form.getlist("sites"))
    known = {site.id for site in all_sites}
    if any(site_id not in known for site_id in wanted):
        errors["sites"] = "Choose sites from the list."
    return role, tier, sorted(set(wanted) & known)


@admin_page
async def agents(request: Request) -> Response:
    if request.method != "POST":
        return await _agents_page(request)
    store, form = _store(request), await read_form(request)
    errors: Errors = {}
    email = _text(form, "email")
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        errors["email"] = "Enter an email address like ana@example.com."
    elif await store.get_agent_by_email(email) is not None:
        errors["email"] = "An agent with this email exists already."
    name = _name(_text(form, "name") or email.split("@")[0], errors)
    role, tier, site_ids = await _agent_choices(request, form, errors)
    if errors:
        return await _agents_page(request, 422, errors, "add", {
            "email": email, "name": _text(form, "name"), "role": role, "tier": tier,
            "sites": site_ids})
    password = new_password()
    added, created = await store.ensure_agent(email, name, role,
                                              await asyncio.to_thread(hash_password, password))
    if not created:  # added concurrently
        return await _agents_page(request, 422, {"email": "An agent with this email exists "
                                                 "already."}, "add", {"email": email})
    added = await store.update_agent(added.id, role=role, tier=tier, site_ids=site_ids)
    return page(request, "console/admin_once.html", kind="agent", target=added,
                secret=password)


async def _target(request: Request) -> Agent:
    found = await _store(request).get_agent(request.path_params["agent_id"])
    if found is None:
        raise NotFound("no such agent", code="agent_not_found")
    return found


@admin_page
async def agent_page(request: Request) -> Response:
    target, form = await _target(request), await read_form(request)
    errors: Errors = {}
    role, tier, site_ids = await _agent_choices(request, form, errors)
    if target.id == _me(request).id and role != "admin" and "role" not in errors:
        errors["role"] = "You cannot remove your own admin role; ask another admin."
    if errors:
        return await _agents_page(request, 422, errors, str(target.id))
    await _store(request).update_agent(target.id, role=role, tier=tier, site_ids=site_ids)
    return _done("/console/admin/agents", "agent-saved")


@admin_page
async def agent_active(request: Request) -> Response:
    target = await _target(request)
    active = _text(await read_form(request), "active") == "1"
    if target.id == _me(request).id and not active:
        return await _agents_page(request, 422, {
            "active": "You cannot disable yourself; ask another admin."}, str(target.id))
    await _store(request).update_agent(target.id, active=active)
    return _done("/console/admin/agents", "agent-enabled" if active else "agent-disabled")


@admin_page
async def agent_password(request: Request) -> Response:
    target = await _target(request)
    password = new_password()
    await _store(request).set_agent_password(
        target.email, await asyncio.to_thread(hash_password, password))
    return page(request, "console/admin_once.html", kind="password", target=target,
                secret=password)


# -- API tokens


async def _tokens_page(request: Request, status: int = 200, errors: Errors | None = None,
                       values: dict[str, Any] | None = None) -> Response:
    store = _store(request)
    all_sites = await store.list_sites()
    members = await store.list_agents()
    tokens = await store.list_api_tokens([site.id for site in all_sites])
    return page(request, "console/admin_tokens.html", status, sites=all_sites, tokens=tokens,
                members=members, agents_by_id={a.id: a for a, _ in members},
                errors=errors or {}, values=values or {}, notice=_notice(request))


@admin_page
async def tokens(request: Request) -> Response:
    if request.method != "POST":
        return await _tokens_page(request)
    store, form = _store(request), await read_form(request)
    errors: Errors = {}
    name = _name(_text(form, "name"), errors)
    site = await store.get_site_by_key(_text(form, "site"))
    if site is None:
        errors["site"] = "Choose a site."
    agent_id = _text(form, "agent")
    acting_id = parse_int(agent_id)
    acting = await store.get_agent(acting_id) if acting_id is not None else None
    if acting is None or not acting.active:
        errors["agent"] = "Choose an active agent the token acts as."
    elif site is not None and not acting.is_admin and \
            site.id not in await store.agent_site_ids(acting):
        errors["agent"] = "This agent does not work on that site; add the site to the agent."
    if errors or site is None or acting is None:
        return await _tokens_page(request, 422, errors, {
            "name": name, "site": _text(form, "site"), "agent": agent_id})
    token = new_api_token()
    await store.create_api_token(name, hash_api_token(token), site.id, acting.id)
    return page(request, "console/admin_once.html", kind="token", target=acting,
                secret=token, site=site, token_name=name)


@admin_page
async def revoke_token(request: Request) -> Response:
    store = _store(request)
    token_id = request.path_params["token_id"]
    known = await store.list_api_tokens([site.id for site in await store.list_sites()])
    if not any(token.id == token_id for token, _, _ in known):
        raise NotFound("no such API token")
    await store.revoke_api_token(token_id)
    return _done("/console/admin/tokens", "token-revoked")


routes: list[BaseRoute] = [
    Route("/console/admin/sites", sites, methods=["GET", "POST"]),
    Route("/console/admin/sites/{key:str}", site_page, methods=["GET", "POST"]),
    Route("/console/admin/sites/{key:str}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/console/admin/sites/{key:str}/mail", site_mail, methods=["POST"]),
    Route("/console/admin/sites/{key:str}/attachments", site_attachments, methods=["POST"]),
    Route("/console/admin/agents", agents, methods=["GET", "POST"]),
    Route("/console/admin/agents/{agent_id:id}", agent_page, methods=["POST"]),
    Route("/console/admin/agents/{agent_id:id}/active", agent_active, methods=["POST"]),
    Route("/console/admin/agents/{agent_id:id}/password", agent_password, methods=["POST"]),
    Route("/console/admin/tokens", tokens, methods=["GET", "POST"]),
    Route("/console/admin/tokens/{token_id:id}/revoke", revoke_token, methods=["POST"]),
]
