"""`widget-server mail outbox`: what the mail outbox holds, and why a mail failed
(docs/email.md). Registered by cli.py, run without a server."""

from __future__ import annotations

import argparse

from widget_server.clock import isoformat
from widget_server.errors import NotFound
from widget_server.mail_settings import parse_support_address
from widget_server.store import Store

DB_HELP = "SQLite file or postgresql:// URL (default: $WIDGET_DB or ./widget.db)"
STATES = ("queued", "sent", "failed", "skipped")


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError("a number of mails from 1 to 10000")
    return int(text)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mail = commands.add_parser("mail", help="outbound mail",
                               description="Outbound mail (docs/email.md).")
    mail_commands = mail.add_subparsers(dest="mail_command", required=True, metavar="ACTION")
    outbox = mail_commands.add_parser(
        "outbox", help="list the newest mails of the outbox and their state",
        description="List the newest mails of the outbox, newest first: state, attempts, "
        "kind, recipient, ticket, and the mail server's last answer for a mail that failed "
        "or waits for a retry.")
    outbox.add_argument("--db", help=DB_HELP)
    outbox.add_argument("--site", help="only this site's mails (a site key)")
    outbox.add_argument("--state", choices=STATES, help="only mails in this state")
    outbox.add_argument("--limit", type=_limit, default=50,
                        help="at most this many mails (default 50)")


def _support_address(text: str) -> str | None:
    try:
        return parse_support_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_site_command(site_commands: argparse._SubParsersAction[argparse.ArgumentParser]
                     ) -> None:
    support = site_commands.add_parser(
        "set-support-address", help="set the address whose mail opens tickets",
        description="Set a site's support address: a mail to it, arriving by the SMTP "
        "receiver or POST /api/v1/inbound-email, opens a ticket and is acknowledged like a "
        "Help Form request (docs/email.md). 'off' removes it.")
    support.add_argument("--db", help=DB_HELP)
    support.add_argument("--site", required=True, help="the site's key")
    support.add_argument("--address", required=True, type=_support_address,
                         metavar="ADDRESS|off", help="e.g. help@acme.test, or off")


async def set_support_address(store: Store, args: argparse.Namespace) -> None:
    site = await store.get_site_by_key(args.site)
    if site is None:
        raise NotFound(f"no site has the key {args.site}", code="site_not_found")
    await store.set_support_address(site.id, args.address)
    print(f"support address of {site.name}: {args.address or 'none'}")


async def run(store: Store, args: argparse.Namespace) -> None:
    site_id = None
    if args.site:
        site = await store.get_site_by_key(args.site)
        if site is None:
            raise NotFound(f"no site has the key {args.site}", code="site_not_found")
        site_id = site.id
    mails = await store.outbox(site_id, args.limit, args.state)
    if not mails:
        print("the outbox is empty" if args.state is None else f"no {args.state} mails")
    for mail in mails:
        ticket = f"#{mail.ticket_number}" if mail.ticket_number is not None else "-"
        when = isoformat(mail.sent_at or mail.next_attempt_at)
        print(f"{mail.id} {mail.state} attempts={mail.attempts} {mail.kind} "
              f"to={mail.to_address} ticket={ticket} {'sent' if mail.sent_at else 'due'}={when}")
        if mail.last_error and mail.state != "sent":
            print(f"  last answer: {mail.last_error}")
