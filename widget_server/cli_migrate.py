"""`widget-server migrate --from PATH.db --to postgresql://...`: move a SQLite installation
to an empty PostgreSQL database (docs/deploy.md). Registered by cli.py, run without a server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate", help="copy a SQLite installation into an empty PostgreSQL database",
        description="Copy every table of a SQLite database into an empty PostgreSQL "
        "database in one transaction, then compare the row counts of every table. Stop "
        "the servers using the SQLite file first. A target that holds data is refused.")
    migrate.add_argument("--from", dest="source", required=True, metavar="PATH",
                         help="the SQLite file to copy")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="the PostgreSQL database, postgresql://user@host:port/dbname")


class MigrateError(Exception):
    """A clear message for the user; the command exits with status 1."""


def run(args: argparse.Namespace) -> int:
    source, target = args.source, args.target
    if not os.path.isfile(source):
        raise MigrateError(f"no SQLite file at {source}")
    if not target.startswith(("postgresql://", "postgres://")):
        raise MigrateError("--to must be a postgresql:// URL")

    # asyncpg only now: the 'postgresql' extra
    from widget_server.store.pg_import import Copied, ImportRefused, copy_sqlite_to_postgresql

    def shown(copied: Copied) -> None:
        print(f"{copied.table}: {copied.rows} rows", flush=True)

    try:
        copied = asyncio.run(copy_sqlite_to_postgresql(source, target, shown))
    except ImportRefused as refused:
        raise MigrateError(str(refused)) from None
    except OSError as error:
        raise MigrateError(f"cannot reach the PostgreSQL database: {error}") from None
    total = sum(entry.rows for entry in copied)
    print(f"copied {total} rows in {len(copied)} tables; every count matches", file=sys.stdout)
    return 0
