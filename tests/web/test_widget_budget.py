"""Byte budgets of the widget, measured on what the server sends, gzipped."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support import ServerProcess
from tests.widget_modules import LOADER, first_open, loaded_later

LOADER_BUDGET = 2048
WHOLE_BUDGET = 15360
# each view loaded only when first shown: an article, Access and Security
LAZY_VIEW_BUDGET = 3072


def sent_bytes(server: ServerProcess, path: str) -> int:
    """Bytes on the wire for a browser that accepts gzip (the body as sent, not decoded)."""
    with httpx.stream("GET", server.url + path, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200, path
        assert response.headers["content-encoding"] == "gzip"
        return sum(len(chunk) for chunk in response.iter_raw())


@pytest.fixture(scope="module")
def version(server: ServerProcess) -> str:
    loader = httpx.get(server.url + "/widget.js").text
    found = re.search(r'version: "([0-9a-f]{12})"', loader)
    assert found, "the loader names its version"
    return found.group(1)


def test_loader_fits_in_two_kib(server: ServerProcess) -> None:
    assert sent_bytes(server, "/widget.js") <= LOADER_BUDGET


def test_loader_panel_and_styles_fit_in_fifteen_kib(server: ServerProcess, version: str) -> None:
    """The first open: the loader, panel.js with every module it imports, and the styles."""
    files = first_open()
    assert {"panel.js", "articles.js"} <= files
    total = sent_bytes(server, "/widget.js") + sum(
        sent_bytes(server, f"/widget/{version}/{name}") for name in [*sorted(files), "panel.css"])
    assert total <= WHOLE_BUDGET


def test_views_loaded_later_load_apart_and_stay_small(server: ServerProcess, version: str) -> None:
    later = loaded_later()
    assert {"access.js", "article.js"} <= later
    for name in sorted(later):
        assert sent_bytes(server, f"/widget/{version}/{name}") <= LAZY_VIEW_BUDGET, name


def test_versioned_files_are_cached_for_a_year_and_loadable_cross_origin(
    server: ServerProcess, version: str
) -> None:
    response = httpx.get(f"{server.url}/widget/{version}/panel.js")
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["access-control-allow-origin"] == "*"
    stale = httpx.get(f"{server.url}/widget/000000000000/panel.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


def test_widget_source_has_no_eval_inline_styles_or_html_injection() -> None:
    from widget_server.web.static import static_dir

    for name in sorted({LOADER} | first_open() | loaded_later()):
        source = (static_dir() / name).read_text()
        for forbidden in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML",
                          "document.write", ".style.", "setAttribute(\"style\"", "document.cookie",
                          "document.title"):
            assert forbidden not in source, f"{name} uses {forbidden}"
