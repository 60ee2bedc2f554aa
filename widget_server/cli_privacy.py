"""The privacy commands of `widget-server` (docs/privacy.md): `retention run`,
`visitor erase` and `site set-retention`. Registered by cli.py, run without a server."""

from __future__ import annotations

import argparse
import sys

from widget_server.clock import Clock
from widget_server.errors import Conflict, NotFound, Unprocessable
from widget_server.models import Site
from widget_server.numbers import parse_int
from widget_server.retention import (
    BATCH,
    RetentionError,
    credential_lifetime,
    parse_days,
    run_retention,
)
from widget_server.store import Store
from widget_server.store.privacy_records import (
    ErasureSelector,
    SelectorKind,
    cutoff,
    describe_days,
)

DB_HELP = "SQLite file or postgresql:// URL (default: $WIDGET_DB or ./widget.db)"
SITE_HELP = "site key (needed when there are several sites)"
MAX_REFERENCE = 200


def _days(text: str) -> int | None:
    try:
        return parse_days(text)
    except RetentionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch(text: str) -> int:
    value = parse_int(text, 1, 10000)
    if value is None:
        raise argparse.ArgumentTypeError("a number of conversations from 1 to 10000")
    return value


def add_site_command(site_commands: argparse._SubParsersAction[argparse.ArgumentParser]
                     ) -> None:
    retention = site_commands.add_parser(
        "set-retention", help="set how long closed conversations are kept",
        description="Set a site's retention period: closed conversations with no activity "
        "for longer are deleted by the retention job; their tickets stay as tombstones "
        "(number, status, dates). 'off' keeps everything (the default). Audited.")
    retention.add_argument("--db", help=DB_HELP)
    retention.add_argument("--site", help=SITE_HELP)
    retention.add_argument("--days", required=True, type=_days, metavar="N|off",
                           help="days to keep closed conversations after their last "
                           "activity, or off")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser(
        "retention", help="run data retention", description="Data retention (docs/privacy.md).")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True,
                                                  metavar="ACTION")
    run = retention_commands.add_parser(
        "run", help="delete what is older than each site's retention period, now",
        description="Delete, for every site with a retention period, the closed conversations "
        "whose last activity is older than the period (messages, conversations, visitors "
        "left without any); tickets stay as tombstones. Prints what was deleted. A server "
        "with the scheduler on does the same every WIDGET_RETENTION_INTERVAL seconds.")
    run.add_argument("--db", help=DB_HELP)
    run.add_argument("--batch", type=_batch, default=BATCH,
                     help=f"conversations per write transaction (default {BATCH})")

    visitor = commands.add_parser("visitor", help="act on one visitor's data",
                                  description="Act on one visitor's data.")
    visitor_commands = visitor.add_subparsers(dest="visitor_command", required=True,
                                              metavar="ACTION")
    erase = visitor_commands.add_parser(
        "erase", help="erase everything of a visitor (an erasure request)",
        description="Delete everything of a visitor on a site: messages, conversations, "
        "article comments, name, email, page URL and browser. Their tickets stay as "
        "tombstones (number, dates). Writes one audit record without the visitor's details. "
        "Exits with 1 when no visitor matches.")
    erase.add_argument("--db", help=DB_HELP)
    erase.add_argument("--site", required=True, help="site key")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the host's user id of an identified visitor")
    who.add_argument("--email", help="the email the visitor gave (every visitor with it)")
    who.add_argument("--visitor", metavar="VISITOR_ID", help="a visitor id (v_...)")
    erase.add_argument("--reference", help="your reference of the request, kept in the audit "
                       "(put no personal data in it)")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")


async def _site(store: Store, key: str | None) -> Site:
    if key:
        site = await store.get_site_by_key(key)
        if site is None:
            raise NotFound(f"no site has the key {key}", code="site_not_found")
        return site
    sites = await store.list_sites()
    if len(sites) != 1:
        raise Unprocessable("there are several sites (or none); choose one with --site KEY",
                            code="site_required")
    return sites[0]


async def run(store: Store, args: argparse.Namespace, clock: Clock, token_max_age: int) -> None:
    if args.command == "retention":
        await _retention_run(store, args, clock, token_max_age)
    elif args.command == "visitor":
        await _erase(store, args)
    else:
        await _set_retention(store, args)


async def _set_retention(store: Store, args: argparse.Namespace) -> None:
    site = await _site(store, args.site)
    site = await store.set_retention(site.id, args.days, "cli")
    if site.retention_days is None:
        print(f"retention for {site.name}: off (everything is kept)")
    else:
        print(f"retention for {site.name}: {describe_days(site.retention_days)} after the "
              "last activity of a closed conversation")


async def _retention_run(store: Store, args: argparse.Namespace, clock: Clock,
                         token_max_age: int) -> None:
    report = await run_retention(store, clock, "cli", batch=args.batch,
                                 credentials=credential_lifetime(token_max_age))
    if not report.acted:
        raise Conflict("another process is running the retention job; try again in a minute",
                       code="retention_busy")
    now = clock.now()
    for site in await store.list_sites():
        if site.retention_days is None:
            print(f"{site.name} ({site.key}): retention off, nothing deleted")
            continue
        purged = report.purged.get(site.id)
        done = purged.summary() if purged else "nothing to delete"
        print(f"{site.name} ({site.key}), {describe_days(site.retention_days)}: {done}")
        stale = await store.stale_open_tickets(site.id, cutoff(now, site.retention_days))
        if stale:
            print(f"  kept {stale} tickets that are not closed although older than the "
                  "period (only closed tickets expire)")


async def _erase(store: Store, args: argparse.Namespace) -> None:
    site = await _site(store, args.site)
    given: tuple[tuple[SelectorKind, str | None], ...] = (
        ("user_id", args.user_id), ("email", args.email), ("visitor", args.visitor))
    kind, value = next((kind, value) for kind, value in given if value is not None)
    if not value.strip():
        raise Unprocessable(f"--{kind.replace('_', '-')} is empty", code="invalid_selector")
    reference = (args.reference or "").strip() or None
    if reference is not None and len(reference) > MAX_REFERENCE:
        raise Unprocessable(f"--reference has at most {MAX_REFERENCE} characters",
                            code="invalid_reference")
    selector = ErasureSelector(kind, value)
    preview = await store.erasure_preview(site.id, selector)
    if preview.empty:
        raise NotFound(f"no visitor on {site.name} has that {kind.replace('_', ' ')}; "
                       "nothing was erased", code="visitor_not_found")
    numbers = ", ".join(f"#{n}" for n in preview.tickets) or "none"
    print(f"matches {preview.visitors} visitor(s) on {site.name}: {preview.conversations} "
          f"conversations, {preview.messages} messages, tickets {numbers}, "
          f"{preview.comments} article comments, {preview.grants} active access grants")
    if not args.yes:
        if not sys.stdin.isatty():
            raise Unprocessable("add --yes to confirm; nothing was erased",
                                code="confirmation_required")
        if input("Erase all of it? Type yes: ").strip().lower() != "yes":
            raise Unprocessable("not confirmed; nothing was erased",
                                code="confirmation_required")
    purged = await store.erase_visitor(site.id, selector, "cli", reference=reference)
    print(f"erased: {purged.summary()}")
    print("audit record written (without the visitor's details)")
