"""The embed snippet a site's pages include: printed by ``init``, shown on the console's site
page (docs/embedding.md)."""

from __future__ import annotations

from widget_server.models import Site


def snippet(site: Site, base_url: str) -> str:
    return (
        "<script>window.HelpWidget=window.HelpWidget||function(){(HelpWidget.q=HelpWidget.q||[])"
        ".push(arguments)};</script>\n"
        f'<script async src="{base_url}/widget.js" data-site="{site.key}"></script>'
    )
