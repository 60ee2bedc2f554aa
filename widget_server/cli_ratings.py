"""`widget-server site set-ratings`: a site's satisfaction ratings switch (ratings.py).
Registered by cli.py, run without a server."""

from __future__ import annotations

import argparse

from widget_server.errors import NotFound
from widget_server.store import Store

DB_HELP = "SQLite file (default: $WIDGET_DB or ./widget.db)"


def add_site_command(site_commands: argparse._SubParsersAction[argparse.ArgumentParser]
                     ) -> None:
    ratings = site_commands.add_parser(
        "set-ratings", help="ask for satisfaction ratings, or not",
        description="Turn a site's satisfaction ratings on or off: when on (the default), "
        "the widget and the solved mail ask \"How did we do?\" once a ticket is solved "
        "(docs/console.md).")
    ratings.add_argument("--db", help=DB_HELP)
    ratings.add_argument("--site", required=True, help="the site's key")
    ratings.add_argument("state", choices=("on", "off"), help="on or off")


async def run(store: Store, args: argparse.Namespace) -> None:
    site = await store.get_site_by_key(args.site)
    if site is None:
        raise NotFound(f"no site has the key {args.site}", code="site_not_found")
    await store.set_ratings_enabled(site.id, args.state == "on")
    print(f"satisfaction ratings of {site.name}: {args.state}")
