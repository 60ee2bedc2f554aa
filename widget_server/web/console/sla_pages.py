"""Console pages of the support policy: SLA reports (SVG charts, CSV) and policy editing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.errors import Unprocessable
from widget_server.models import Site
from widget_server.numbers import parse_int
from widget_server.policy import DEFAULT_POLICY_TOML, PolicyError, parse_policy
from widget_server.reports import SlaReport, build_report
from widget_server.runtime import Runtime
from widget_server.web.console.auth import (
    admin_page,
    chosen_site,
    console_page,
    page,
    site_for_agent,
)
from widget_server.web.forms import read_form

CHART_HEIGHT = 120
MAX_POLICY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as text
    x: float
    y: float
    height: float
    kind: str = "a"
    tick: str = ""  # the label under the axis; long series label only every few bars


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    bar_width: float
    width: float


def chart(title: str, values: list[tuple[str, float, str]], kind: str = "a",
          bar_width: float = 36, gap: float = 10) -> Chart:
    """Bar geometry drawn from the baseline up; the template turns it into SVG."""
    top = max((value for _, value, _ in values), default=0) or 1
    if len(values) > 10:  # a daily series: narrow bars, a tick label once a week
        bar_width, gap = 16, 6
    every = 7 if len(values) > 10 else 1
    found = []
    for index, (label, value, shown) in enumerate(values):
        height = CHART_HEIGHT * value / top
        tick = label if (len(values) - 1 - index) % every == 0 else ""
        found.append(Bar(label, value, shown, index * (bar_width + gap),
                         CHART_HEIGHT - height, height, kind, tick))
    return Chart(title, found, bar_width, max(200.0, len(found) * (bar_width + gap) + 30))


def _rt(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


async def _chosen(request: Request) -> tuple[Site, list[Site], int]:
    site, sites = await chosen_site(request)
    days = parse_int(request.query_params.get("days", "30"))
    return site, sites, max(1, min(30 if days is None else days, 366))


async def _report(request: Request) -> tuple[Site, list[Site], SlaReport]:
    site, sites, days = await _chosen(request)
    rt = _rt(request)
    return site, sites, await build_report(rt.store, rt.clock.now(), site.id, days)


def hours(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.1f} h"


@console_page
async def reports(request: Request) -> Response:
    site, sites, report = await _report(request)
    flow = [(day.strftime("%d %b"), float(report.opened_per_day[day]),
             str(report.opened_per_day[day])) for day in report.opened_per_day]
    solved = [(day.strftime("%d %b"), float(report.solved_per_day[day]),
               str(report.solved_per_day[day])) for day in report.solved_per_day]
    breach = [(key, (rate or 0.0) * 100, "—" if rate is None else f"{rate:.0%}")
              for key, rate in report.breach_rate.items()]
    backlog = [(status, float(count), str(count)) for status, count in report.backlog.items()]
    return page(request, "console/reports.html", site=site, sites=sites, report=report,
                p50=hours(report.first_response_p50_s), p90=hours(report.first_response_p90_s),
                charts=[chart("Opened per day", flow), chart("Solved per day", solved, "b"),
                        chart("Breach rate per severity (%)", breach, "c", 64),
                        chart("Backlog by status", backlog, "b", 64)],
                chart_height=CHART_HEIGHT)


@console_page
async def reports_csv(request: Request) -> Response:
    site, _, report = await _report(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["metric", "key", "value"])
    writer.writerow(["first_response_p50_seconds", "", report.first_response_p50_s or ""])
    writer.writerow(["first_response_p90_seconds", "", report.first_response_p90_s or ""])
    for key, rate in report.breach_rate.items():
        writer.writerow(["breach_rate", key, "" if rate is None else f"{rate:.4f}"])
    for day, count in report.opened_per_day.items():
        writer.writerow(["opened", day.isoformat(), count])
    for day, count in report.solved_per_day.items():
        writer.writerow(["solved", day.isoformat(), count])
    for status, count in report.backlog.items():
        writer.writerow(["backlog", status, count])
    filename = f"sla-{site.key}-{report.since}-{report.until}.csv"
    return Response(out.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


@admin_page
async def policy_page(request: Request) -> Response:
    site = await site_for_agent(request, request.path_params["key"])
    text, error = site.policy or DEFAULT_POLICY_TOML, None
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        text = str(form.get("policy", ""))
        try:
            if len(text.encode()) > MAX_POLICY_BYTES:
                raise Unprocessable("the policy is too long", code="invalid_policy")
            parse_policy(text)
            await _rt(request).store.set_site_policy(site.id, text)
            return RedirectResponse(f"/console/admin/sites/{site.key}/policy?saved=1", 303)
        except PolicyError as exc:
            error, status = exc.message, 422
        except Unprocessable as exc:
            error, status = exc.message, 422
    return page(request, "console/policy.html", status, site=site, policy=text, error=error,
                saved=request.query_params.get("saved") == "1")


routes = [
    Route("/console/reports", reports, methods=["GET"]),
    Route("/console/reports/sla.csv", reports_csv, methods=["GET"]),
    Route("/console/admin/sites/{key:str}/policy", policy_page, methods=["GET", "POST"]),
]
