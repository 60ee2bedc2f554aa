"""Byte budgets of the widget, measured on what the server sends, gzipped."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support import ServerProcess

LOADER_BUDGET = 2048
WHOLE_BUDGET = 15360
ACCESS_VIEW_BUDGET = 3072  # loaded only when a verified visitor opens Access and Security


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
    total = sent_bytes(server, "/widget.js") + sum(
        sent_bytes(server, f"/widget/{version}/{name}")
        for name in ("panel.js", "articles.js", "panel.css"))
    assert total <= WHOLE_BUDGET


def test_access_view_loads_apart_and_stays_small(server: ServerProcess, version: str) -> None:
    assert sent_bytes(server, f"/widget/{version}/access.js") <= ACCESS_VIEW_BUDGET


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

    for name in ("widget.js", "panel.js", "articles.js", "access.js"):
        source = (static_dir() / name).read_text()
        for forbidden in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML",
                          "document.write", ".style.", "setAttribute(\"style\"", "document.cookie",
                          "document.title"):
            assert forbidden not in source, f"{name} uses {forbidden}"
