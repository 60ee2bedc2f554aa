"""The `widget-server` command: serve, init, token create, articles import, demo."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from widget_server import (
    __version__,
    cli_attachments,
    cli_mail,
    cli_migrate,
    cli_privacy,
    cli_ratings,
    demo,
)
from widget_server.api_tokens import hash_api_token, integration_token, new_api_token
from widget_server.article_import import (
    ArticleImportError,
    import_articles,
    read_folder,
)
from widget_server.cli_privacy import DB_HELP, SITE_HELP
from widget_server.clock import Clock, SystemClock, isoformat
from widget_server.config import ConfigError, Settings
from widget_server.embed import snippet
from widget_server.errors import WidgetError
from widget_server.models import Site
from widget_server.numbers import parse_int
from widget_server.origins import parse_origin
from widget_server.passwords import WeakPassword, check_password, hash_password, new_password
from widget_server.policy import DEFAULT_POLICY_TOML, format_duration, parse_policy
from widget_server.store import Store, database_errors, open_store
from widget_server.text import one_line


class CommandError(Exception):
    """A clear message for the user; the command exits with status 1."""


def _line(text: str) -> str:
    """A name given on the command line, cleaned like one typed in the console."""
    value = one_line(text)
    if not value:
        raise argparse.ArgumentTypeError("a name needs some text")
    return value


def _whole_number(text: str) -> int:
    value = parse_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="widget-server", description="Self-hosted help widget backend.")
    parser.add_argument("--version", action="version", version=f"widget-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server",
                                description="Run the server (HTTP and websockets).")
    _server_options(serve)

    init = commands.add_parser(
        "init", help="create the schema, a site and an admin; print the embed snippet",
        description="Create the schema, a site allowed on ORIGIN and optionally an admin "
        "agent; print the site key and the embed snippet. Safe to run again.")
    init.add_argument("--db", help=DB_HELP)
    init.add_argument("--site-name", required=True, type=_line, help="name of the site")
    init.add_argument("--origin", required=True, action="append",
                      help="origin the widget is embedded on, e.g. https://app.example.com "
                      "(repeat for more)")
    init.add_argument("--admin-email", help="email of the admin agent to create")
    init.add_argument("--admin-password", help="password of that admin (needs --admin-email)")
    init.add_argument("--public-url", help="URL browsers reach this server at, for the snippet")

    token = commands.add_parser("token", help="manage REST API tokens",
                                description="Manage REST API tokens.")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser(
        "create", help="print a new REST API token",
        description="Create a bearer token for /api/v1 and print it (it is stored hashed; "
        "it cannot be shown again).")
    create.add_argument("--db", help=DB_HELP)
    create.add_argument("--name", required=True, type=_line, help="what the token is for")
    create.add_argument("--site", help=SITE_HELP)
    create.add_argument("--agent", help="email of the agent the token acts as (default: an "
                        "integration agent named after the token)")

    agent = commands.add_parser("agent", help="manage console agents",
                                description="Manage the agents who sign in to /console.")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    add = agent_commands.add_parser("add", help="add an agent (or update one)",
                                    description="Add an agent, or update the role, tier and "
                                    "sites of an existing one.")
    add.add_argument("--db", help=DB_HELP)
    add.add_argument("--email", required=True, help="the agent's sign-in email")
    add.add_argument("--name", type=_line,
                     help="display name shown to visitors (default: from the email)")
    add.add_argument("--password", help="password (default: a generated one, printed once)")
    add.add_argument("--role", choices=["agent", "admin"],
                     help="admin manages sites, agents and tokens (default for a new agent: "
                     "agent; an existing agent keeps theirs)")
    add.add_argument("--site", action="append", default=[],
                     help="site key the agent works on (repeat for more)")
    add.add_argument("--tier", type=_whole_number,
                     help="support tier: 1 first level, 2 second level, ... (default for a new "
                     "agent: 1; an existing agent keeps theirs)")
    listing = agent_commands.add_parser("list", help="list agents",
                                        description="List agents with role, tier and sites.")
    listing.add_argument("--db", help=DB_HELP)
    for action, text in (("disable", "disable an agent and end their sessions"),
                         ("reset-password", "set a new password and print it")):
        sub = agent_commands.add_parser(action, help=text, description=text.capitalize() + ".")
        sub.add_argument("--db", help=DB_HELP)
        sub.add_argument("--email", required=True, help="the agent's email")
        if action == "reset-password":
            sub.add_argument("--password", help="the new password (default: generated)")

    policy = commands.add_parser("policy", help="show or import a site's support policy",
                                 description="Show or import a site's support policy (TOML).")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True,
                                            metavar="ACTION")
    for action, text in (("show", "print the policy as TOML (the default one if none is set)"),
                         ("import", "check a TOML file and make it the site's policy")):
        sub = policy_commands.add_parser(action, help=text, description=text.capitalize() + ".")
        sub.add_argument("--db", help=DB_HELP)
        sub.add_argument("--site", help=SITE_HELP)
        if action == "import":
            sub.add_argument("file", help="the policy file (see docs/policy.md)")

    articles = commands.add_parser("articles", help="manage help-centre articles",
                                   description="Manage help-centre articles.")
    article_commands = articles.add_subparsers(dest="articles_command", required=True,
                                               metavar="ACTION")
    imports = article_commands.add_parser(
        "import", help="import a folder of Markdown articles (again: updates them)",
        description="Import every .md file of DIR as an article (front matter: title, slug, "
        "category, status). Articles are matched by slug: importing again updates them and "
        "never duplicates. A folder with a broken file imports nothing.")
    imports.add_argument("--db", help=DB_HELP)
    imports.add_argument("--site", help=SITE_HELP)
    imports.add_argument("dir", metavar="DIR", help="folder of .md files")

    site = commands.add_parser("site", help="inspect sites", description="Inspect sites.")
    site_commands = site.add_subparsers(dest="site_command", required=True, metavar="ACTION")
    show = site_commands.add_parser(
        "show", help="print each site's key, allowed origins and identity secret",
        description="Print each site's key, allowed origins and identity secret (the key "
        "host backends sign user ids with). Treat the output as a secret.")
    show.add_argument("--db", help=DB_HELP)
    rotate = site_commands.add_parser(
        "rotate-secret", help="make a new identity secret, keeping the old one for a while",
        description="Make a new identity secret for a site and print it. Hashes made with the "
        "previous secret stay valid for --grace-hours (0: refused at once).")
    rotate.add_argument("--db", help=DB_HELP)
    rotate.add_argument("--site", help=SITE_HELP)
    rotate.add_argument("--grace-hours", type=_grace_hours, default=24.0,
                        help="hours the previous secret is still accepted (default 24)")
    cli_privacy.add_site_command(site_commands)  # site set-retention
    cli_mail.add_site_command(site_commands)  # site set-support-address
    cli_ratings.add_site_command(site_commands)  # site set-ratings
    cli_attachments.add_site_command(site_commands)  # site set-attachments
    cli_privacy.add_commands(commands)  # retention run, visitor erase
    cli_mail.add_commands(commands)  # mail outbox
    cli_migrate.add_commands(commands)  # migrate --from --to

    demo_command = commands.add_parser(
        "demo", help="serve a ready demo site with its host page at /demo",
        description="Serve a ready demo: a site, an admin whose credentials are printed, "
        "an API token, sample help articles, and the host page at /demo. Its data and "
        "credentials are kept between runs (the credentials in a file beside the database).")
    _server_options(demo_command, default_db=f"$WIDGET_DB or {demo.DEMO_DB}")
    demo_command.add_argument(
        "--fresh", action="store_true",
        help="delete the demo's database and credentials file first and start over")
    return parser


def _server_options(parser: argparse.ArgumentParser, default_db: str | None = None) -> None:
    where = default_db or "$WIDGET_DB or ./widget.db"
    parser.add_argument("--host", help="interface (default: $WIDGET_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=_whole_number, help="port (default: $WIDGET_PORT or 8000)")
    parser.add_argument("--db", help=f"SQLite file or postgresql:// URL (default: {where})")
    parser.add_argument("--public-url", help="URL browsers reach this server at")


def _origin(value: str) -> str:
    try:
        return parse_origin(value)
    except ValueError:
        raise CommandError(f"{value!r} is not an origin like https://app.example.com") from None


def _given_password(value: str | None, option: str) -> str | None:
    """A password from the command line, held to the console's rule (passwords.py)."""
    if value is None:
        return None
    try:
        return check_password(value)
    except WeakPassword as exc:
        raise CommandError(f"{option}: {exc}") from None


def _grace_hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of hours, like 24") from None
    if not 0 <= hours <= 24 * 365:
        raise argparse.ArgumentTypeError("between 0 and 8760 hours")
    return hours


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[Any]],
                      clock: Clock) -> Any:
    store = open_store(settings, clock)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def _agent(store: Store, args: argparse.Namespace) -> None:
    if args.agent_command == "list":
        sites = {site.id: site.key for site in await store.list_sites()}
        for agent, site_ids in await store.list_agents():
            state = "active" if agent.active else "disabled"
            where = ", ".join(sites[i] for i in site_ids) or ("all sites" if agent.is_admin
                                                              else "no site")
            print(f"{agent.email}\t{agent.name}\t{agent.role}\ttier {agent.tier}\t{state}\t"
                  f"{where}")
        return
    found = await store.get_agent_by_email(args.email)
    given = _given_password(getattr(args, "password", None), "--password")
    if args.agent_command == "add":
        site_ids = []
        for key in args.site:
            site = await store.get_site_by_key(key)
            if site is None:
                raise CommandError(f"no site has the key {key}")
            site_ids.append(site.id)
        if args.tier is not None and args.tier < 1:
            raise CommandError("--tier starts at 1")
        password = given or new_password()
        name = args.name or args.email.split("@")[0]
        agent, created = await store.ensure_agent(args.email, name, args.role or "agent",
                                                  hash_password(password))
        # an existing agent changes only in what was asked: role, tier, sites, password
        await store.update_agent(agent.id, role=args.role, tier=args.tier,
                                 site_ids=site_ids if args.site or created else None,
                                 active=True)
        if not created and given:
            await store.set_agent_password(agent.email, hash_password(given))
        print(f"agent {'created' if created else 'updated'}: {agent.email}")
        if created and not given:
            print(f"password: {password}")
        return
    if found is None:
        raise CommandError(f"no agent has the email {args.email}")
    if args.agent_command == "disable":
        await store.update_agent(found.id, active=False)
        print(f"agent disabled: {found.email}")
    else:
        password = given or new_password()
        await store.set_agent_password(found.email, hash_password(password))
        print(f"password reset: {found.email}")
        if not given:
            print(f"password: {password}")


async def _policy(store: Store, args: argparse.Namespace) -> None:
    site = await _pick_site(store, args.site)
    if args.policy_command == "show":
        print(site.policy or DEFAULT_POLICY_TOML, end="")
        return
    try:
        text = Path(args.file).read_text("utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    policy = parse_policy(text)  # a PolicyError names the line that is wrong
    await store.set_site_policy(site.id, text)
    levels = ", ".join(f"{level.key} {format_duration(level.first_response)}"
                       for level in policy.severities)
    hours = "24/7" if policy.calendar.always_open else f"hours in {policy.calendar.timezone}"
    print(f"policy imported for {site.name}: {levels}; {hours}")


async def _articles_import(store: Store, args: argparse.Namespace) -> None:
    site = await _pick_site(store, args.site)
    sources = read_folder(Path(args.dir))
    report = await import_articles(store, site.id, sources)
    print(f"articles imported for {site.name}: {report}")


async def _site_show(store: Store) -> None:
    sites = await store.list_sites()
    if not sites:
        raise CommandError("there is no site yet; run `widget-server init` first")
    for site in sites:
        print(f"site: {site.name}")
        print(f"site key: {site.key}")
        print(f"allowed origins: {', '.join(site.allowed_origins)}")
        print(f"identity secret: {site.identity_secret}")
        print(f"identity mode: {site.identity_mode}")
        if site.previous_identity_secret and site.previous_secret_until:
            print(f"previous secret accepted until: {isoformat(site.previous_secret_until)}")
        print()


async def _rotate_secret(store: Store, args: argparse.Namespace) -> None:
    site = await _pick_site(store, args.site)
    site = await store.update_site(site.id, rotate_secret=True,
                                   grace=timedelta(hours=args.grace_hours))
    print(f"identity secret: {site.identity_secret}")
    if site.previous_secret_until is not None:
        print(f"previous secret accepted until: {isoformat(site.previous_secret_until)}")
    else:
        print("previous secret: no longer accepted")


async def _init(store: Store, args: argparse.Namespace, settings: Settings) -> None:
    if args.admin_password and not args.admin_email:
        raise CommandError("--admin-password needs --admin-email")
    admin_password = _given_password(args.admin_password, "--admin-password")
    origins = [_origin(value) for value in args.origin]
    site, created = await store.ensure_site(args.site_name, origins)
    print(f"site {'created' if created else 'exists'}: {site.name}")
    print(f"site key: {site.key}")
    print(f"allowed origins: {', '.join(site.allowed_origins)}")
    if args.admin_email:
        password = admin_password
        agent, agent_created = await store.ensure_agent(
            args.admin_email, args.admin_email.split("@")[0], "admin",
            hash_password(password) if password else None)
        if not agent_created and password:
            await store.set_agent_password(agent.email, hash_password(password))
        print(f"admin {'created' if agent_created else 'exists'}: {agent.email}")
    print("\nPaste this before </body> on your pages:\n")
    print(snippet(site, settings.base_url))


async def _pick_site(store: Store, key: str | None) -> Site:
    if key:
        site = await store.get_site_by_key(key)
        if site is None:
            raise CommandError(f"no site has the key {key}")
        return site
    sites = await store.list_sites()
    if not sites:
        raise CommandError("there is no site yet; run `widget-server init` first")
    if len(sites) > 1:
        raise CommandError("there are several sites; choose one with --site KEY")
    return sites[0]


async def _token_create(store: Store, args: argparse.Namespace) -> None:
    site = await _pick_site(store, args.site)
    if args.agent:
        agent = await store.get_agent_by_email(args.agent)
        if agent is None:
            raise CommandError(f"no agent has the email {args.agent}")
        # a token acts only while its agent works on its site (checked again at every use)
        if not agent.active:
            raise CommandError(f"the agent {agent.email} is disabled")
        if site.id not in await store.agent_site_ids(agent):
            raise CommandError(f"the agent {agent.email} does not work on the site {site.key}; "
                               f"add it with `widget-server agent add --email {agent.email} "
                               f"--site {site.key}`")
        token = new_api_token()
        await store.create_api_token(args.name, hash_api_token(token), site.id, agent.id)
    else:
        token = await integration_token(store, site, args.name)
    print(token)


def _serve(settings: Settings, clock: Clock) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from widget_server.app import create_app
    from widget_server.log_format import log_config
    from widget_server.logs import redact_private_links
    from widget_server.web.http_deadline import header_deadline_protocol

    config = uvicorn.Config(
        create_app(settings, clock),
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        # protocol pings find dead peers; one silent for a whole interval more is dropped
        ws_ping_interval=settings.ws_ping_interval or None,
        ws_ping_timeout=settings.ws_ping_interval or None,
        # forwarded headers are believed only from WIDGET_TRUSTED_PROXIES, as in
        # client_address.py (uvicorn alone would trust 127.0.0.1): the scheme for Secure
        # cookies, the client address for the limits
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=header_deadline_protocol(settings.http_timeout),
        log_level=settings.log_level,
        # JSON: our access line (web/request_log.py) has the request id, route and site
        log_config=log_config(settings.log_format, settings.log_level) or LOGGING_CONFIG,
        access_log=settings.log_format != "json",
        server_header=False,
        lifespan="on",
    )
    redact_private_links()
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exit_:  # uvicorn exits when it cannot bind or start up
        if exit_.code not in (0, None):
            raise CommandError(
                f"the server could not start on {settings.host}:{settings.port} "
                "(is the port in use?)") from None
    if not server.started:
        raise CommandError(f"the server could not start on {settings.host}:{settings.port}")


def main(argv: Sequence[str] | None = None, clock: Clock | None = None) -> int:
    """The command line; ``clock`` lets a test-only launcher move a real server's time."""
    args = build_parser().parse_args(argv)
    clock = clock or SystemClock()
    try:
        if args.command == "migrate":  # two databases: neither --db nor WIDGET_DB
            return cli_migrate.run(args)
        db = args.db
        if args.command == "demo" and db is None and not os.environ.get("WIDGET_DB"):
            db = demo.DEMO_DB  # never mix demo data into the default ./widget.db
        settings = Settings.from_env(
            db=db, host=getattr(args, "host", None), port=getattr(args, "port", None),
            public_url=getattr(args, "public_url", None))
        if args.command == "serve":
            # fail early, clearly
            asyncio.run(_with_store(settings, lambda store: store.ping(), clock))
            _serve(settings, clock)
        elif args.command == "agent":
            asyncio.run(_with_store(settings, lambda store: _agent(store, args), clock))
        elif args.command == "policy":
            asyncio.run(_with_store(settings, lambda store: _policy(store, args), clock))
        elif args.command == "articles":
            asyncio.run(_with_store(settings, lambda store: _articles_import(store, args), clock))
        elif args.command in {"retention", "visitor"} or (
                args.command == "site" and args.site_command == "set-retention"):
            asyncio.run(_with_store(
                settings, lambda store: cli_privacy.run(store, args, clock, settings),
                clock))
        elif args.command == "site" and args.site_command == "set-attachments":
            asyncio.run(_with_store(settings, lambda store: cli_attachments.set_rules(
                store, args, settings.max_upload_bytes), clock))
        elif args.command == "site" and args.site_command == "set-support-address":
            asyncio.run(_with_store(settings, lambda store: cli_mail.set_support_address(
                store, args), clock))
        elif args.command == "site" and args.site_command == "set-ratings":
            asyncio.run(_with_store(settings, lambda store: cli_ratings.run(store, args), clock))
        elif args.command == "mail":
            asyncio.run(_with_store(settings, lambda store: cli_mail.run(store, args), clock))
        elif args.command == "site":
            if args.site_command == "rotate-secret":
                asyncio.run(_with_store(settings, lambda store: _rotate_secret(store, args), clock))
            else:
                asyncio.run(_with_store(settings, _site_show, clock))
        elif args.command == "init":
            asyncio.run(_with_store(settings, lambda store: _init(store, args, settings), clock))
        elif args.command == "token":
            asyncio.run(_with_store(settings, lambda store: _token_create(store, args), clock))
        elif args.command == "demo":
            if args.fresh:
                demo.forget(settings.db)
            lines = asyncio.run(_with_store(settings, lambda s: demo.prepare_demo(s, settings),
                                            clock))
            print("\n".join(lines), flush=True)
            _serve(settings, clock)
    except (CommandError, ConfigError, WidgetError, ArticleImportError,
            cli_migrate.MigrateError) as exc:
        print(f"widget-server: error: {exc}", file=sys.stderr)
        return 1
    except database_errors() as exc:
        print(f"widget-server: error: cannot use the database: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
