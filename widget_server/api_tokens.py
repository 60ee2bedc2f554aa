"""REST API tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from widget_server.models import Site
    from widget_server.store import Store

PREFIX = "wst_"


def new_api_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def integration_token(store: Store, site: Site, name: str) -> str:
    """A new token acting for the integration agent ``name`` (made once, without a password,
    and made a member of ``site``, since a token acts only while its agent works on its site)."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    agent, _ = await store.ensure_agent(f"{slug or 'api'}@integrations.invalid", name, "agent",
                                        None)
    site_ids = await store.agent_site_ids(agent)
    if site.id not in site_ids:
        await store.update_agent(agent.id, site_ids=[*site_ids, site.id])
    token = new_api_token()
    await store.create_api_token(name, hash_api_token(token), site.id, agent.id)
    return token
