"""One jinja2 environment for every server-rendered page: autoescape on, strict undefined."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from widget_server.clock import isoformat

templates = Environment(
    loader=PackageLoader("widget_server", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# ``<time datetime>`` takes at most milliseconds and needs Z or an offset: never the six
# digits of datetime.isoformat()
templates.filters["iso"] = isoformat


def render(name: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status,
                        headers=headers)
