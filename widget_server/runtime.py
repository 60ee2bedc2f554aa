"""The objects one running server shares: settings, store, hub, messaging, token signer."""

from __future__ import annotations

from dataclasses import dataclass

from widget_server.abuse import Limits
from widget_server.attachments import Attachments
from widget_server.clock import Clock
from widget_server.config import Settings
from widget_server.errors import Unauthorized
from widget_server.help_tokens import HelpTokens
from widget_server.messaging import Messaging
from widget_server.models import Site, Visitor, normalize_origin
from widget_server.realtime.hub import Hub
from widget_server.store import Store
from widget_server.visitor_tokens import VisitorTokens


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub
    clock: Clock
    messaging: Messaging
    tokens: VisitorTokens
    help_tokens: HelpTokens
    secret_keys: list[str]  # oldest first; the last one signs
    limits: Limits  # abuse limits: sessions, messages, sockets per visitor / address
    attachments: Attachments  # uploads, their files and links (docs/api.md#attachments)

    async def origin_allowed_anywhere(self, origin: str | None) -> bool:
        if not origin:
            return False
        wanted = normalize_origin(origin)
        if any(wanted in site.allowed_origins for site in await self.store.list_sites()):
            return True
        # not in the cached list: maybe a site changed in another process a moment ago
        return any(wanted in site.allowed_origins
                   for site in await self.store.list_sites(fresh=True))

    async def site(self, key: str) -> Site | None:
        return await self.store.get_site_by_key(key)

    async def token_visitor(self, token: str, site: Site) -> Visitor:
        """The visitor a token speaks for on ``site`` now: signed, unexpired, and not erased
        since it was issued (``Unauthorized`` otherwise). Every write checks the erasure
        again, in its transaction."""
        visitor = self.tokens.read(token, site)
        if visitor.since is not None and \
                await self.store.visitor_erased(visitor.id, visitor.since):
            raise Unauthorized("the visitor token is no longer valid", code="invalid_token")
        return visitor
