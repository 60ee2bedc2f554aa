"""The widget's ES modules: no import cycles, and the server serves every module the panel loads."""

from __future__ import annotations

import pytest

from tests.widget_modules import ENTRY, Module, cycle, first_open, loaded_later, modules
from widget_server.web.static import PANEL_FILES


def test_the_widget_modules_import_no_cycle() -> None:
    found = cycle(modules())
    assert found is None, "import cycle among the widget's modules: " + " -> ".join(found or [])


def test_the_cycle_check_sees_lazy_imports_back_to_the_panel() -> None:
    graph = {
        "panel.js": Module("panel.js", static={"views.js"}),
        "views.js": Module("views.js", dynamic={"access.js"}),
        "access.js": Module("access.js", static={"panel.js"}),
    }
    assert cycle(graph) == ["access.js", "panel.js", "views.js", "access.js"]
    graph["access.js"].static = {"dom.js"}
    assert cycle(graph) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_import_is_a_literal_sibling_module(name: str) -> None:
    module = modules()[name]
    found = len(module.static) + len(module.dynamic)
    assert module.import_count == found, (
        f"{name}: an import this test cannot read (write `import ... from \"./x.js\"` or "
        "`import(\"./x.js\")`)")
    for target in module.static | module.dynamic:
        assert target in modules(), f"{name} imports {target}, which is not a module of the widget"


def test_every_module_the_panel_loads_is_served_and_nothing_else() -> None:
    loaded = first_open() | loaded_later()
    served = {name for name in PANEL_FILES if name.endswith(".js")}
    assert ENTRY in loaded
    assert loaded == served, (
        f"serve these: {sorted(loaded - served)}; served but unused: {sorted(served - loaded)}")
