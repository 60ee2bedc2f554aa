"""Help articles as pure functions: front matter, inert Markdown, plain text, feedback rules."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from widget_server.articles import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    REASONS,
    ArticleError,
    Feedback,
    clean_comment,
    make_source,
    parse_feedback,
    parse_source,
    plain_text,
    render_markdown,
    sanitize,
    slugify,
    snippet_parts,
    snippet_text,
)
from widget_server.errors import Unprocessable
from widget_server.rate_limit import RateLimiter, retry_after

XSS_MARKDOWN = [
    "<script>alert(1)</script>",
    "Hello <script>alert(1)</script> world",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](java\nscript:alert(1))",
    "<javascript:alert(1)>",
    "[click](vbscript:msgbox(1))",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "<div>\n<iframe src=\"https://evil.test\"></iframe>\n</div>",
    "<style>body{display:none}</style>",
    '<a href="javascript:alert(1)">raw link</a>',
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '[t](https://ok.test "x\\" onmouseover=\\"alert(1)")',
    "<details open ontoggle=alert(1)>",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "<!-- <script>alert(1)</script> -->",
    '<form action="https://evil.test"><input name=x></form>',
    '<object data="evil.swf"></object><embed src="evil.swf">',
    '<a href="https://ok.test" target="_blank" style="color:red">styled</a>',
]
HOSTILE_HTML = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<svg onload="alert(1)"></svg>',
    '<iframe src="https://evil.test"></iframe>',
    "<style>*{}</style>",
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<p onclick="alert(1)" style="x">p</p>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
]


class Inspector(HTMLParser):
    """Every element and attribute of a fragment, to check them against the allow-list."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


def assert_inert(html: str) -> None:
    inspector = Inspector()
    inspector.feed(html)
    lowered = html.lower()
    for needle in ("<script", "<svg", "<iframe", "<style", "<object", "<embed", "<form",
                   "<details", "<input"):
        assert needle not in lowered, html  # as escaped text (&lt;script) it is harmless
    for tag, attrs in inspector.elements:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert not name.startswith("on"), html
            allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | {"rel", "class"}
            assert name in allowed, (tag, name, html)
            if name in {"href", "src"}:
                scheme = urlsplit(value or "").scheme.lower()
                assert scheme in {"", "http", "https", "mailto"}, html
                assert not (value or "").strip().lower().startswith(
                    ("javascript", "vbscript", "data")), html


@pytest.mark.parametrize("source", XSS_MARKDOWN)
def test_xss_payloads_in_markdown_render_inert(source: str) -> None:
    assert_inert(render_markdown(source))


@pytest.mark.parametrize("html", HOSTILE_HTML)
def test_the_sanitiser_alone_makes_hostile_html_inert(html: str) -> None:
    """Defence in depth: even if Markdown let raw HTML through, nh3 would hold."""
    assert_inert(sanitize(html))


def test_raw_html_is_shown_as_text_not_dropped() -> None:
    html = render_markdown("Type <b>bold</b> & <script>x</script>")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "&amp;" in html
    assert "&lt;script&gt;" in html


def test_links_are_kept_with_a_safe_rel_and_web_schemes_only() -> None:
    html = render_markdown("[site](https://example.com/a?b=1) [mail](mailto:help@example.com) "
                           "[page](/help/articles/other) [ftp](ftp://example.com/f)")
    assert '<a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow">site</a>' \
        in html
    assert 'href="mailto:help@example.com"' in html
    assert 'href="/help/articles/other"' in html
    assert 'href="ftp' not in html


def test_markdown_features_survive_sanitising() -> None:
    html = render_markdown("# Title\n\n## Sub\n\n*em* **strong** ~~gone~~ `code`\n\n"
                           "> quote\n\n1. one\n2. two\n\n- a\n\n```\nblock\n```\n\n"
                           "| a | b |\n|:-:|--:|\n| 1 | 2 |\n\n![alt](https://img.test/x.png)")
    assert "<h2>Title</h2>" in html and "<h3>Sub</h3>" in html  # the page owns the only h1
    for fragment in ("<em>em</em>", "<strong>strong</strong>", "<s>gone</s>", "<code>code</code>",
                     "<blockquote>", "<ol>", "<ul>", "<pre><code>block", "<table>",
                     '<th class="align-center">a</th>', '<td class="align-right">2</td>',
                     '<img src="https://img.test/x.png" alt="alt">'):
        assert fragment in html, fragment
    assert "style=" not in html
    assert render_markdown("## A\n\n### B") == "<h2>A</h2>\n<h3>B</h3>\n"  # already below h1


def test_front_matter_gives_the_fields_and_the_body() -> None:
    source = parse_source("---\ntitle: \"Reset: your password\"\nslug: reset-password\n"
                          "category: Account\nstatus: draft\n---\n\nBody **here**.\n")
    assert (source.title, source.slug, source.category, source.status) == \
        ("Reset: your password", "reset-password", "Account", "draft")
    assert source.body_md == "Body **here**.\n"
    assert source.body_html == "<p>Body <strong>here</strong>.</p>\n"
    assert source.body_text == "Body here."


def test_front_matter_defaults() -> None:
    source = parse_source("---\ntitle: Hello\n---\nText", fallback_slug="My First Article")
    assert (source.slug, source.category, source.status) == \
        ("my-first-article", "General", "published")
    assert slugify("Écrire à l'équipe!") == "ecrire-a-l-equipe"


@pytest.mark.parametrize(("text", "message"), [
    ("---\ntitle: x\n", "never ends"),
    ("---\ntitle x\n---\n", "key: value"),
    ("---\ntitle: x\nauthor: y\n---\n", "unknown front matter keys: author"),
    ("---\nslug: ok\n---\n", "needs a title"),
    ("---\ntitle: x\nslug: Not A Slug\n---\n", "slug"),
    ("---\ntitle: x\nslug: ok\nstatus: live\n---\n", "draft or published"),
    ("no front matter at all", "title"),
])
def test_bad_front_matter_is_explained(text: str, message: str) -> None:
    with pytest.raises(ArticleError, match=message):
        parse_source(text)


def test_make_source_limits() -> None:
    with pytest.raises(ArticleError, match="title"):
        make_source("x" * 201, "ok", "", "published", "")
    with pytest.raises(ArticleError, match="body"):
        make_source("ok", "ok", "", "published", "x" * 200_001)


def test_plain_text_is_what_a_reader_sees() -> None:
    text = plain_text("# Reset\n\nClick **Forgot your password?** and [open](https://x.test) "
                      "the `link`.\n\n![diagram of the flow](https://x.test/p.png)\n\n"
                      "```\nwidget-server demo\n```\n\n<b>raw</b>")
    assert text.splitlines() == [
        "Reset", "Click Forgot your password? and open the link.", "diagram of the flow",
        "widget-server demo", "<b>raw</b>"]


def test_snippet_markers_become_parts() -> None:
    snippet = "…reset your \x02password\x03 from the \x02pass\x03word page"
    assert snippet_text(snippet) == "…reset your password from the password page"
    assert snippet_parts(snippet) == [
        {"text": "…reset your ", "match": False}, {"text": "password", "match": True},
        {"text": " from the ", "match": False}, {"text": "pass", "match": True},
        {"text": "word page", "match": False}]


@pytest.mark.parametrize("reason", list(REASONS))
def test_each_of_the_four_reasons_is_accepted(reason: str) -> None:
    assert parse_feedback({"helpful": False, "reason": reason}) == Feedback(False, reason)
    assert parse_feedback({"helpful": False, "reason": reason, "comment": " more \x00"}) == \
        Feedback(False, reason, "more")


def test_the_reasons_have_exactly_the_policy_texts() -> None:
    assert list(REASONS.values()) == [
        "The article didn't address my problem", "I couldn't understand the article",
        "The feature doesn't do what I need", "Other reason"]


@pytest.mark.parametrize("data", [
    {}, {"helpful": "yes"}, {"helpful": 1}, {"helpful": None},
    {"helpful": True, "reason": "other"}, {"helpful": True, "comment": "great"},
    {"helpful": True, "reason": None},
    {"helpful": False}, {"helpful": False, "reason": "bad"},
    {"helpful": False, "reason": "Other reason"}, {"helpful": False, "reason": 1},
    {"helpful": False, "reason": "other", "comment": 5},
    {"helpful": False, "reason": "other", "comment": "x" * 1001},
    {"helpful": True, "visitor": "v_1"}, {"helpful": False, "reason": "other", "email": "a@b"},
])
def test_anything_else_is_unprocessable(data: dict[str, object]) -> None:
    with pytest.raises(Unprocessable):
        parse_feedback(data)


def test_a_comment_of_exactly_the_limit_is_fine() -> None:
    assert parse_feedback({"helpful": False, "reason": "other", "comment": "x" * 1000}).comment \
        == "x" * 1000


def test_article_comments_are_plain_bounded_text() -> None:
    assert clean_comment("  Thanks!\r\nIt worked. ") == "Thanks!\nIt worked."
    for bad in ("", "   ", None, 3, "x" * 2001):
        with pytest.raises(Unprocessable):
            clean_comment(bad)


def test_rate_limiter_buckets_refill_and_say_how_long_to_wait() -> None:
    now = [1000.0]
    limiter = RateLimiter(3, 60.0, monotonic=lambda: now[0])
    key = limiter.key("203.0.113.7", "site_a")
    assert b"203.0.113.7" not in key and len(key) == 16
    assert [limiter.take(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take(key)
    assert wait == pytest.approx(20.0)
    assert retry_after(wait) == "20"
    assert limiter.take(limiter.key("203.0.113.8", "site_a")) == 0.0  # another address
    assert limiter.take(limiter.key("203.0.113.7", "site_b")) == 0.0  # another site
    now[0] += 20
    assert limiter.take(key) == 0.0
    assert limiter.take(key) > 0


def test_rate_limiter_keys_are_salted_per_process() -> None:
    first, second = RateLimiter(1, 1.0), RateLimiter(1, 1.0)
    assert first.key("198.51.100.1") != second.key("198.51.100.1")


def test_rate_limiter_forgets_idle_clients() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, monotonic=lambda: now[0], max_keys=3)
    for address in ("a", "b", "c"):
        limiter.take(limiter.key(address))
    now[0] += 10  # all refilled
    limiter.take(limiter.key("d"))
    assert len(limiter._buckets) == 1
