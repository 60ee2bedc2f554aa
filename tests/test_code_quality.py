"""ruff and mypy are part of the suite: a lint or type error fails CI like a broken test."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "widget_server", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_five_hundred_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): length
        for package in ("widget_server", "bench")
        for path in (ROOT / package).rglob("*.py")
        if (length := len(path.read_text().splitlines())) > 500
    }
    assert too_long == {}


def test_domain_modules_do_not_import_the_web_framework() -> None:
    domain = ["tickets.py", "models.py", "clock.py", "errors.py", "messaging.py",
              "visitor_tokens.py", "passwords.py", "config.py"]
    offenders = [name for name in domain
                 if "starlette" in (ROOT / "widget_server" / name).read_text()]
    offenders += [str(p.relative_to(ROOT)) for p in (ROOT / "widget_server" / "realtime").rglob(
        "*.py") if "starlette" in p.read_text()]
    assert offenders == []


def test_sql_lives_only_in_the_store() -> None:
    keywords = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "widget_server").rglob("*.py")
        if "store" not in path.relative_to(ROOT / "widget_server").parts
        and any(keyword in path.read_text() for keyword in keywords)
    ]
    assert offenders == []


def _import_graph() -> dict[str, set[str]]:
    """widget_server's modules and the ones each imports, at any level of the file (inside
    functions and ``if TYPE_CHECKING`` too: a cycle there is still two modules that need
    each other). Importing ``a.b.c`` runs ``a/b/__init__.py`` too, so it counts as importing
    the package ``a.b`` as well, unless the importer is inside that package."""
    package = ROOT / "widget_server"
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                    base = f"{anchor}.{base}" if base else anchor
                imported.add(base)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        edges: set[str] = set()
        for target in imported:
            parts = target.split(".")
            for end in range(2, len(parts) + 1):  # the module and the packages above it
                prefix = ".".join(parts[:end])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_widget_server_has_no_import_cycle() -> None:
    graph = _import_graph()
    assert "widget_server.store.sqlite" in graph["widget_server.store"]  # a function's import
    cycles = _cycles(graph)
    detail = [[f"{module} -> {', '.join(sorted(graph[module] & set(cycle)))}"
               for module in cycle] for cycle in cycles]
    assert detail == []
