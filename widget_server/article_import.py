"""Importing a folder of Markdown articles (``widget-server articles import``, the demo).

Every ``*.md`` file is one article: front matter (title, slug, category, status) and a body.
All files are checked before anything is written, so a broken folder imports nothing.
Articles are matched by (site, slug): importing again updates them and never duplicates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from widget_server.articles import ArticleError, ArticleSource, parse_source
from widget_server.store import Store


class ArticleImportError(ValueError):
    """The folder cannot be imported; the message names each file that is wrong."""


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        return (f"{self.created} created, {self.updated} updated, "
                f"{self.unchanged} unchanged")


def read_folder(folder: Path | Traversable) -> list[ArticleSource]:
    """The articles of every ``*.md`` file in ``folder`` (not its subfolders), by file name."""
    if not folder.is_dir():
        raise ArticleImportError(f"{folder} is not a folder")
    files = sorted((entry for entry in folder.iterdir()
                    if entry.name.endswith(".md") and entry.is_file()),
                   key=lambda entry: entry.name)
    if not files:
        raise ArticleImportError(f"{folder} has no .md files")
    sources, problems = [], []
    for entry in files:
        try:
            sources.append(parse_source(entry.read_text("utf-8"), entry.name.removesuffix(".md")))
        except (ArticleError, UnicodeDecodeError) as exc:
            problems.append(f"{entry.name}: {exc}")
    repeated = [slug for slug, count in Counter(s.slug for s in sources).items() if count > 1]
    problems += [f"the slug {slug!r} is used by more than one file" for slug in repeated]
    if problems:
        raise ArticleImportError("cannot import the articles:\n  " + "\n  ".join(problems))
    return sources


async def import_articles(store: Store, site_id: int, sources: list[ArticleSource]
                          ) -> ImportReport:
    outcomes: Counter[str] = Counter()
    for source in sources:
        _, outcome = await store.upsert_article(site_id, source)
        outcomes[outcome] += 1
    return ImportReport(outcomes["created"], outcomes["updated"], outcomes["unchanged"])


def sample_articles() -> list[ArticleSource]:
    """The sample articles that ship with the package, for ``widget-server demo``."""
    return read_folder(resources.files("widget_server").joinpath("sample_articles"))
