"""The widget's ES modules as a graph: which module imports which, statically or with import().

Read from the sources in widget_static/ with two regular expressions, which is enough for
code we write ourselves: tests/web/test_widget_modules.py checks that every import in them is
one these expressions understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[1] / "widget_static"
ENTRY = "panel.js"  # what the loader (widget.js, a classic script) imports
LOADER = "widget.js"

# import ... from "./x.js", import "./x.js", export ... from "./x.js"; may span lines
STATIC = re.compile(r"""^\s*(?:import|export)\b[^"'();=]*?["']([^"']+)["']""", re.MULTILINE)
DYNAMIC = re.compile(r"""\bimport\(\s*["']([^"']+)["']\s*\)""")
ANY_IMPORT = re.compile(r"""^\s*import\b|\bimport\s*\(|^\s*export\b[^;=(]*\bfrom\b""", re.MULTILINE)


@dataclass
class Module:
    name: str
    static: set[str] = field(default_factory=set)
    dynamic: set[str] = field(default_factory=set)
    import_count: int = 0  # every import statement or import() call, understood or not


def target(specifier: str) -> str:
    found = re.fullmatch(r"\./([\w-]+\.js)", specifier)
    return found.group(1) if found else specifier


def modules() -> dict[str, Module]:
    graph: dict[str, Module] = {}
    for path in sorted(WIDGET.glob("*.js")):
        if path.name == LOADER:
            continue
        source = path.read_text("utf-8")
        graph[path.name] = Module(
            path.name,
            static={target(s) for s in STATIC.findall(source)},
            dynamic={target(s) for s in DYNAMIC.findall(source)},
            import_count=len(ANY_IMPORT.findall(source)),
        )
    return graph


def reachable(graph: dict[str, Module], start: str, *, dynamic: bool) -> set[str]:
    """The modules `start` loads: its static imports' closure, with import() too if asked."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        todo.extend(graph[name].static | (graph[name].dynamic if dynamic else set()))
    return seen


def first_open() -> set[str]:
    """The modules a browser fetches to show the panel: panel.js and its static imports."""
    return reachable(modules(), ENTRY, dynamic=False)


def loaded_later() -> set[str]:
    """Modules fetched only when a view needs them (import() from the panel's modules)."""
    graph = modules()
    return reachable(graph, ENTRY, dynamic=True) - first_open()


def cycle(graph: dict[str, Module]) -> list[str] | None:
    """One import cycle (static or dynamic edges) as a path that ends where it starts."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        module = graph.get(name)
        for next_name in sorted(module.static | module.dynamic) if module else []:
            if state.get(next_name) == "open":
                return [*path[path.index(next_name):], next_name]
            if next_name not in state and (found := visit(next_name, [*path, next_name])):
                return found
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [name])):
            return found
    return None
