"""`widget-server site set-attachments`: a site's attachment rules (docs/api.md#attachments).
Registered by cli.py, run without a server."""

from __future__ import annotations

import argparse

from widget_server.attachment_content import DEFAULT_TYPES
from widget_server.errors import NotFound, Unprocessable
from widget_server.store import Store

DB_HELP = "SQLite file (default: $WIDGET_DB or ./widget.db)"
KNOWN_TYPES = frozenset(DEFAULT_TYPES)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError("a number from 1 to 100")
    return int(text)


def _megabytes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("a number of MB from 1 to 10000")
    return int(text) * 1024 * 1024


def _types(text: str) -> tuple[str, ...] | None:
    if text == "default":
        return None
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [kind for kind in chosen if kind not in KNOWN_TYPES]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of {', '.join(DEFAULT_TYPES)} (or 'default')")
    return chosen


def add_site_command(site_commands: argparse._SubParsersAction[argparse.ArgumentParser]
                     ) -> None:
    rules = site_commands.add_parser(
        "set-attachments", help="set a site's attachment limits and allowed types",
        description="Set what visitors and agents of a site may attach: the largest file, "
        "the files per message, the allowed types (detected from the content), and whether "
        "images keep their metadata (EXIF, GPS). Options not given keep their value.")
    rules.add_argument("--db", help=DB_HELP)
    rules.add_argument("--site", required=True, help="the site's key")
    rules.add_argument("--max-mb", type=_megabytes, help="largest file in MB (default 10)")
    rules.add_argument("--max-files", type=_count, help="files per message (default 10)")
    rules.add_argument("--types", type=_types, default=False, metavar="TYPE,...|default",
                       help="allowed content types, e.g. image/png,application/pdf")
    rules.add_argument("--keep-metadata", choices=("on", "off"),
                       help="keep images' EXIF and GPS metadata (default off: removed)")


async def set_rules(store: Store, args: argparse.Namespace, ceiling: int) -> None:
    site = await store.get_site_by_key(args.site)
    if site is None:
        raise NotFound(f"no site has the key {args.site}", code="site_not_found")
    max_bytes = args.max_mb or site.attachment_max_bytes
    if max_bytes > ceiling:
        raise Unprocessable(f"--max-mb is above WIDGET_MAX_UPLOAD_BYTES ({ceiling} bytes)",
                            code="invalid_max_mb")
    types = site.attachment_types if args.types is False else args.types
    keep = site.attachment_keep_metadata if args.keep_metadata is None \
        else args.keep_metadata == "on"
    await store.set_attachment_rules(site.id, max_bytes, args.max_files or
                                     site.attachment_max_files, types, keep)
    print(f"attachments of {site.name}: at most {max_bytes // (1024 * 1024)} MB a file, "
          f"{args.max_files or site.attachment_max_files} a message; types: "
          f"{', '.join(types or DEFAULT_TYPES)}; image metadata "
          f"{'kept' if keep else 'removed'}")
