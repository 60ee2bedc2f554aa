"""Help articles: front matter, Markdown rendering, sanitising, plain text and feedback rules.

Pure functions, no web framework, no SQL. Rendering is defence in depth: markdown-it-py runs
with raw HTML *off* (any HTML in the Markdown comes out as escaped text), and its output then
goes through nh3 with an allow-list of tags, attributes and URL schemes. Either layer alone
should keep scripts out; both must hold.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from widget_server.errors import Unprocessable
from widget_server.text import multi_line, one_line

STATUSES = ("draft", "published")
DEFAULT_CATEGORY = "General"
TITLE_MAX = 200
CATEGORY_MAX = 80
SLUG_MAX = 100
BODY_MAX = 200_000
COMMENT_MAX = 1000  # feedback comments
ARTICLE_COMMENT_MAX = 2000  # comments under an article
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# The four reasons of the support policy, in the order the page shows them.
REASONS: dict[str, str] = {
    "not_addressed": "The article didn't address my problem",
    "not_understood": "I couldn't understand the article",
    "feature_missing": "The feature doesn't do what I need",
    "other": "Other reason",
}

# The same reasons as agents read them in the console's reports.
REASON_LABELS: dict[str, str] = {
    "not_addressed": "Didn't address the problem",
    "not_understood": "Hard to understand",
    "feature_missing": "Feature doesn't do what's needed",
    "other": "Other reason",
    "none": "No reason given",  # a "No" left at the reason step
}

ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
}
ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"

# A search or view counts as deflected when no new request follows from the same browser
# within this window (docs/help_centre.md).
DEFLECTION_WINDOW = timedelta(minutes=30)

HIGHLIGHT_START, HIGHLIGHT_END = "\x02", "\x03"  # what the store's snippet() marks matches with


class ArticleError(ValueError):
    """An article file or form that cannot be used; the message says why."""


@dataclass(frozen=True)
class ArticleSource:
    """An article as written: front matter fields and the Markdown body."""

    slug: str
    title: str
    category: str
    status: str
    body_md: str

    @property
    def body_html(self) -> str:
        return render_markdown(self.body_md)

    @property
    def body_text(self) -> str:
        return plain_text(self.body_md)


@dataclass(frozen=True)
class Article:
    id: int
    site_id: int
    slug: str
    category: str
    title: str
    body_md: str
    body_html: str  # sanitised: the only HTML a template may output unescaped
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ArticleHit:
    id: int
    slug: str
    title: str
    category: str
    snippet: str  # plain text; matches between HIGHLIGHT_START and HIGHLIGHT_END


@dataclass(frozen=True)
class Comment:
    id: int
    article_id: int
    author_type: str  # visitor | agent
    author_name: str | None
    body: str
    hidden: bool
    created_at: datetime

    @property
    def display_name(self) -> str:
        return self.author_name or ("Support" if self.author_type == "agent" else "Customer")


@dataclass(frozen=True)
class Feedback:
    helpful: bool
    reason: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class FeedbackComment:
    """What a reader wrote after voting "No", shown to agents with the reason's label."""

    reason: str
    comment: str
    created_at: datetime

    @property
    def reason_label(self) -> str:
        return REASON_LABELS.get(self.reason, self.reason)


@dataclass(frozen=True)
class ArticleMetrics:
    id: int
    slug: str
    title: str
    status: str
    views: int
    helpful: int
    not_helpful: int
    reasons: dict[str, int]
    comments: int

    @property
    def helpful_share(self) -> float | None:
        votes = self.helpful + self.not_helpful
        return None if votes == 0 else self.helpful / votes


@dataclass(frozen=True)
class SiteMetrics:
    since: datetime
    until: datetime
    views: int
    searches: int
    searches_without_results: int
    top_queries_without_results: list[tuple[str, int]]
    tracked_events: int  # searches and views from a browser id, whose 30 minutes are over
    deflected_events: int  # ... of which no new request followed
    pending_events: int  # tracked, but the 30 minutes are not over yet
    articles: list[ArticleMetrics] = field(default_factory=list)

    @property
    def deflection_rate(self) -> float | None:
        return None if self.tracked_events == 0 else self.deflected_events / self.tracked_events


# -- front matter
def parse_source(text: str, fallback_slug: str = "") -> ArticleSource:
    """An article file: an optional ``---`` block of ``key: value`` lines, then Markdown."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    meta: dict[str, str] = {}
    body = text
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        except StopIteration:
            raise ArticleError("the front matter starts with --- but never ends") from None
        for number, line in enumerate(lines[1:end], start=2):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, colon, value = line.partition(":")
            if not colon or not key.strip():
                raise ArticleError(f"line {number}: expected 'key: value'")
            meta[key.strip().lower()] = _unquote(value.strip())
        body = "\n".join(lines[end + 1:])
    unknown = set(meta) - {"title", "slug", "category", "status"}
    if unknown:
        raise ArticleError(f"unknown front matter keys: {', '.join(sorted(unknown))}")
    return make_source(meta.get("title", ""), meta.get("slug") or slugify(fallback_slug),
                       meta.get("category", ""), meta.get("status", "published"), body)


def make_source(title: str, slug: str, category: str, status: str, body_md: str
                ) -> ArticleSource:
    """Checked article fields (for the importer and, later, the console editor)."""
    title = _one_line(title)
    category = _one_line(category) or DEFAULT_CATEGORY
    slug, status = slug.strip(), status.strip().lower()
    if not title:
        raise ArticleError("an article needs a title")
    if len(title) > TITLE_MAX:
        raise ArticleError(f"the title can have at most {TITLE_MAX} characters")
    if len(category) > CATEGORY_MAX:
        raise ArticleError(f"the category can have at most {CATEGORY_MAX} characters")
    if not SLUG.fullmatch(slug) or len(slug) > SLUG_MAX:
        raise ArticleError(f"the slug {slug!r} must be lower-case letters, digits and single "
                           f"hyphens, at most {SLUG_MAX} characters")
    if status not in STATUSES:
        raise ArticleError("status must be draft or published")
    if len(body_md) > BODY_MAX:
        raise ArticleError(f"the body can have at most {BODY_MAX} characters")
    return ArticleSource(slug, title, category, status, body_md.strip() + "\n")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:SLUG_MAX].strip("-")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _one_line(value: str) -> str:
    return one_line(value)


# -- rendering
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _tokens(body_md: str) -> list[Token]:
    tokens = _markdown.parse(body_md)
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    shift = max(0, 2 - min(levels, default=2))  # the article title is the page's one h1
    for token in tokens:
        if shift and token.type in {"heading_open", "heading_close"}:
            token.tag = f"h{min(6, int(token.tag[1]) + shift)}"
        if token.type in {"th_open", "td_open"}:
            style = str(token.attrs.pop("style", ""))
            align = style.removeprefix("text-align:")
            if align in {"left", "center", "right"}:
                token.attrs["class"] = f"align-{align}"
    return tokens


def render_markdown(body_md: str) -> str:
    """Markdown to sanitised HTML, safe to insert into a page or a shadow root."""
    html = _markdown.renderer.render(_tokens(body_md), _markdown.options, {})
    return sanitize(html)


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        link_rel=LINK_REL,
        url_schemes=URL_SCHEMES,
        allowed_classes={"th": ALIGN_CLASSES, "td": ALIGN_CLASSES},
        strip_comments=True,
    )


def plain_text(body_md: str) -> str:
    """The words of the article as a reader sees them, one block per line, for search."""
    blocks: list[str] = []
    for token in _tokens(body_md):
        if token.type == "inline":
            blocks.append("".join(_inline_text(child) for child in token.children or []))
        elif token.type in {"fence", "code_block"}:
            blocks.append(token.content.rstrip("\n"))
    return "\n".join(block for block in (b.strip() for b in blocks) if block)


def _inline_text(token: Token) -> str:
    if token.type in {"text", "code_inline"}:
        return token.content
    if token.type in {"softbreak", "hardbreak"}:
        return " "
    if token.type == "image":
        return "".join(_inline_text(child) for child in token.children or [])
    return ""


def snippet_parts(snippet: str) -> list[dict[str, Any]]:
    """A highlighted snippet as ``[{"text": str, "match": bool}, ...]`` (markers removed)."""
    parts: list[dict[str, Any]] = []
    for index, piece in enumerate(re.split(f"[{HIGHLIGHT_START}{HIGHLIGHT_END}]", snippet)):
        if piece:
            parts.append({"text": piece, "match": index % 2 == 1})
    return parts


def snippet_text(snippet: str) -> str:
    return snippet.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")


# -- feedback
def parse_feedback(data: dict[str, object]) -> Feedback:
    """``{"helpful": true}`` or ``{"helpful": false, "reason": R, "comment"?: str}``; anything
    else is ``Unprocessable`` (unknown keys, wrong types, a reason with Yes, none with No)."""
    unknown = set(data) - {"helpful", "reason", "comment"}
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}",
                            code="invalid_feedback")
    helpful = data.get("helpful")
    if not isinstance(helpful, bool):
        raise Unprocessable("helpful must be true or false", code="invalid_feedback")
    reason, comment = data.get("reason"), data.get("comment")
    if helpful:
        if "reason" in data or "comment" in data:
            raise Unprocessable("a reason or comment goes only with helpful: false",
                                code="invalid_feedback")
        return Feedback(True)
    if not isinstance(reason, str) or reason not in REASONS:
        raise Unprocessable(f"reason must be one of {', '.join(REASONS)}",
                            code="invalid_feedback")
    if comment is not None and not isinstance(comment, str):
        raise Unprocessable("comment must be a string", code="invalid_feedback")
    if comment is not None and len(comment) > COMMENT_MAX:
        raise Unprocessable(f"the comment can have at most {COMMENT_MAX} characters",
                            code="invalid_feedback")
    text = _clean_text(comment or "")
    return Feedback(False, reason, text or None)


def clean_comment(body: object) -> str:
    """A comment under an article: plain text, 1 to ARTICLE_COMMENT_MAX characters."""
    if not isinstance(body, str):
        raise Unprocessable("body must be a string", code="invalid_comment")
    text = _clean_text(body)
    if not text:
        raise Unprocessable("write a comment first", code="invalid_comment")
    if len(text) > ARTICLE_COMMENT_MAX:
        raise Unprocessable(f"a comment can have at most {ARTICLE_COMMENT_MAX} characters",
                            code="invalid_comment")
    return text


def _clean_text(value: str) -> str:
    return multi_line(value).strip()
