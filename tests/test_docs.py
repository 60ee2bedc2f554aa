"""The documentation keeps up with the code: these tests fail when a setting, a flag, a frame
type, an error code, a route, a module, or a widget command, event or script attribute is
added without being documented, when the README loses its screenshots, and when the docs
grow past their budgets, cite anything outside the repository or tell the history of the work
instead of the code."""

from __future__ import annotations

import argparse
import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from starlette.routing import Mount

from widget_server.app import create_app
from widget_server.cli import build_parser
from widget_server.config import SETTINGS, Settings
from widget_server.realtime import protocol

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "widget_server"


def _doc(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def _optional_doc(name: str) -> str:
    path = DOCS / name
    return path.read_text("utf-8") if path.is_file() else ""


# Pages with a reference of their own may document their routes and error codes there.
CONSOLE_ROUTES = ("/console", "/ws/console")
HELP_ROUTES = ("/help", "/api/widget/v1/articles", "/api/widget/v1/events", "/console/help")
HELP_SOURCES = ("widget_server/article", "widget_server/store/help_",
                "widget_server/store/sqlite_help", "widget_server/web/help_")


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text("utf-8")


Parser = argparse.ArgumentParser


def _parsers(parser: Parser, name: str) -> Iterator[tuple[str, Parser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                yield from _parsers(subparser, f"{name} {command}")


def test_every_setting_is_documented() -> None:
    text = _doc("configuration.md")
    missing = [setting.env for setting in SETTINGS if f"`{setting.env}`" not in text]
    assert not missing, f"add these settings to docs/configuration.md: {missing}"


def test_every_command_and_option_is_documented() -> None:
    text = _doc("configuration.md")
    missing = []
    for name, parser in _parsers(build_parser(), "widget-server"):
        if name != "widget-server" and f"`{name}`" not in text:
            missing.append(name)
        for action in parser._actions:
            for option in action.option_strings:
                if option not in text:
                    missing.append(f"{name} {option}")
    assert not missing, f"add these to docs/configuration.md: {missing}"


def _server_frame_types() -> set[str]:
    found: set[str] = set()
    realtime = PACKAGE / "realtime"
    for path in (realtime / "protocol.py", realtime / "visitor_stream.py",
                 PACKAGE / "web" / "widget_ws.py"):
        found.update(re.findall(r'"type":\s*"([a-z_]+)"', path.read_text("utf-8")))
    return found


def test_every_frame_type_is_documented() -> None:
    text = _doc("protocol.md")
    types = set(protocol.CLIENT_TYPES) | _server_frame_types()
    assert {"ready", "ack", "message", "ticket", "typing", "pong", "error"} <= types
    missing = sorted(
        name for name in types
        if f'"type":"{name}"' not in text and f'"type": "{name}"' not in text
    )
    assert not missing, f"add examples of these frames to docs/protocol.md: {missing}"


_CODE_PATTERNS = (
    re.compile(r'\bcode\s*=\s*"([a-z][a-z0-9_]*)"'),          # code="x" and class attributes
    re.compile(r'\bRefused\(\s*"([a-z][a-z0-9_]*)"'),
    re.compile(r'\bFrameError\(\s*"([a-z][a-z0-9_]*)"'),
    re.compile(r'\berror_frame\(\s*"([a-z][a-z0-9_]*)"'),
    re.compile(r'\bjson_error\(\s*\d{3},\s*"([a-z][a-z0-9_]*)"'),
    re.compile(r'^\s*\d{3}:\s*"([a-z][a-z0-9_]*)"', re.MULTILINE),  # status -> code tables
)


def _error_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for path, source in _sources():
        for pattern in _CODE_PATTERNS:
            for code in pattern.findall(source):
                codes.setdefault(code, str(path.relative_to(ROOT)))
    return codes


def test_every_error_code_is_documented() -> None:
    codes = _error_codes()
    assert {"invalid_json", "hello_required", "body_too_long", "ticket_not_found"} <= set(codes)
    text = _doc("protocol.md") + _doc("api.md")
    help_text = _optional_doc("help_centre.md")
    missing = {
        code: where for code, where in codes.items()
        if f"`{code}`" not in text + (help_text if where.startswith(HELP_SOURCES) else "")
    }
    assert not missing, ("document these error codes in docs/protocol.md or docs/api.md "
                         f"(help-centre codes may be in docs/help_centre.md): {missing}")


def _route_paths() -> list[str]:
    paths = []
    for route in create_app(Settings()).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", ""))
        paths.append(path + "/" if isinstance(route, Mount) else path)
    return paths


def _route_docs(path: str) -> str:
    """api.md and protocol.md; also console.md for the console, help_centre.md for help."""
    text = _doc("api.md") + _doc("protocol.md")
    if path.startswith(CONSOLE_ROUTES):
        text += _doc("console.md")
    if path.startswith(HELP_ROUTES):
        text += _optional_doc("help_centre.md")
    return text


def test_every_route_is_documented() -> None:
    paths = _route_paths()
    assert "/ws/widget" in paths and "/api/v1/tickets/{number}" in paths
    assert "/ws/console" in paths and "/console" in paths
    missing = [path for path in paths
               if f"`{path}`" not in _route_docs(path) and f" {path}`" not in _route_docs(path)]
    assert not missing, (
        "document these routes in docs/api.md or docs/protocol.md (console routes may be in "
        f"docs/console.md, help-centre routes in docs/help_centre.md): {missing}")


def test_every_module_is_in_the_architecture_page() -> None:
    text = _doc("architecture.md")
    missing = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in {".py", ".sql"} or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(PACKAGE).as_posix()
        if relative not in text and path.name not in text:
            missing.append(relative)
    assert not missing, f"describe these files in docs/architecture.md: {missing}"


def test_readme_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for path in sorted(DOCS.glob("*.md")):
        assert f"(docs/{path.name})" in readme, f"link docs/{path.name} from README.md"


WIDGET = ROOT / "widget_static"


def _widget_commands() -> set[str]:
    panel = (WIDGET / "panel.js").read_text("utf-8")
    actions = re.search(r"const actions = \{(.*?)\n\s*\};", panel, re.DOTALL)
    assert actions, "panel.js no longer has an `actions` object; update this test"
    commands = set(re.findall(r"^\s*(\w+):", actions.group(1), re.MULTILINE))
    loader = (WIDGET / "widget.js").read_text("utf-8")
    commands |= set(re.findall(r'command === "(\w+)"', loader))
    return commands


def _widget_events() -> set[str]:
    events: set[str] = set()
    for name in ("widget.js", "panel.js"):
        source = (WIDGET / name).read_text("utf-8")
        for first_argument in re.findall(r"\bemit\(([^,()]*),", source):  # also a ? "b" : "c"
            events.update(re.findall(r'"(\w+)"', first_argument))
    return events


def _widget_attributes() -> set[str]:
    loader = (WIDGET / "widget.js").read_text("utf-8")
    names = re.findall(r"\bscript\.dataset\.(\w+)", loader)
    return {"data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), n) for n in names}


def test_the_widget_api_is_documented() -> None:
    text = _doc("embedding.md")
    commands, events, attributes = _widget_commands(), _widget_events(), _widget_attributes()
    assert {"open", "close", "toggle", "show", "hide", "identify", "logout", "on"} <= commands
    assert {"ready", "open", "close", "message", "unread", "ticket", "error"} <= events
    assert {"data-site", "data-side", "data-z-index", "data-mode"} <= attributes
    events_section = text.split("### Events", 1)[-1].split("\n## ", 1)[0]
    missing = sorted(
        [f"HelpWidget('{c}'" for c in commands if f"HelpWidget('{c}'" not in text]
        + [f"event `{e}`" for e in events if f"| `{e}` |" not in events_section]
        + [f"`{a}`" for a in attributes if f"`{a}`" not in text]
    )
    assert "helpwidget:<event>" in text, "docs/embedding.md must name the DOM events"
    assert not missing, f"document these in docs/embedding.md: {missing}"


def test_readme_shows_the_screenshots() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in ("widget-desktop.png", "widget-mobile.png", "console-ticket-desktop.png",
                 "console-ticket-desktop-dark.png", "console-inbox-mobile.png",
                 "help-home-desktop.png", "help-article-mobile.png",
                 "before-console-ticket-desktop.png", "before-help-article-desktop.png"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
        assert re.search(rf"!\[[^\]]+\]\(docs/{re.escape(name)}\)", readme), (
            f"README.md must show docs/{name} as an image with alt text")


# Docs are a reference; the history of the work lives in git.
PERFORMANCE_MAX_LINES = 250
ARCHITECTURE_MAX_LINES = 350
PROSE_FOLDERS = ("widget_server", "widget_static", "bench", "tests")
OUTSIDE = re.compile(r"\bDESIGN\b|\.\./shared|/work/shared")
HISTORY = re.compile(
    r"\bitems? \d+\b|\bthis stop\b|\bstop's\b|\b(previous|last|earlier|next) stops?\b"
    r"|\bstops? ago\b|\bearlier version\b|\bfirst version of\b|\bwas changed\b"
    r"|\bissue #?\d+\b|\bused to (be|run|index|read|write|send|hold|cost|take|go)\b",
    re.IGNORECASE)


def _line_count(name: str) -> int:
    return len(_doc(name).splitlines())


def test_the_performance_page_is_a_short_reference() -> None:
    lines = _line_count("performance.md")
    assert lines <= PERFORMANCE_MAX_LINES, (
        f"docs/performance.md has {lines} lines (at most {PERFORMANCE_MAX_LINES}): a reference, "
        "not a log of measurements")
    text = _doc("performance.md")
    for heading in ("## Running it", "## Targets", "## Design decisions", "## Slow disks"):
        assert f"\n{heading}" in text, f"docs/performance.md lost its {heading!r} section"


def test_the_architecture_page_fits() -> None:
    lines = _line_count("architecture.md")
    assert lines <= ARCHITECTURE_MAX_LINES, (
        f"docs/architecture.md has {lines} lines (at most {ARCHITECTURE_MAX_LINES})")
    text = _doc("architecture.md")
    opening = text.split("\n## ", 2)
    assert "```" in opening[0] and opening[1].startswith("The path of a message"), (
        "docs/architecture.md opens with the picture, then the path of a message")


def _prose_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    yield from sorted(DOCS.glob("*.md"))
    for folder in PROSE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if (path.suffix in {".md", ".py", ".js", ".css", ".html", ".sql"}
                    and "__pycache__" not in path.parts and path != Path(__file__)):
                yield path


def test_nothing_refers_outside_the_repository() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in _prose_files()
             for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
             if OUTSIDE.search(line)]
    assert not found, ("the repository's docs and code cite nothing outside it; restate "
                       "what readers need in docs/:\n" + "\n".join(found))


def _python_prose(source: str) -> Iterator[tuple[int, str]]:
    """The comments and docstrings of a Python module, with their line numbers."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                first = node.body[0].lineno
                for offset, line in enumerate(docstring.splitlines()):
                    yield first + offset, line


_WEB_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/|<!--.*?-->|\{#.*?#\}|--[^\n]*", re.DOTALL)


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """What a file says in words: all of a Markdown file, the comments and docstrings of code."""
    text = path.read_text("utf-8")
    if path.suffix == ".md":
        yield from enumerate(text.splitlines(), 1)
    elif path.suffix == ".py":
        yield from _python_prose(text)
    else:
        for match in _WEB_COMMENT.finditer(text):
            yield text.count("\n", 0, match.start()) + 1, match.group(0)


def test_docs_and_comments_describe_the_present() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
             for path in _prose_files() for number, line in _prose(path)
             if HISTORY.search(line)]
    assert not found, ("describe the code as it is, not the history of the work on it "
                       "(that lives in git):\n" + "\n".join(found))
