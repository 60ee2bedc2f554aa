"""Console pages of the support policy: reports with SVG charts and CSV, policy editing."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    csrf_of,
    run_cli,
    start_session,
)

pytestmark = pytest.mark.anyio

POLICY = """
[[severity]]
key = "blocker"
label = "Blocker"
description = "Nothing works."
first_response = "1h"

[[severity]]
key = "question"
label = "Question"
description = "Just asking."
first_response = "1d"
"""


async def sign_in(server: ServerProcess, site: Site, role: str = "admin") -> httpx.AsyncClient:
    return await console_client(server, site, role)


async def test_reports_page_draws_svg_and_exports_the_same_figures_as_csv(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Report me", severity="high")
    await visitor.close()
    client = await sign_in(server, site)
    page = await client.get(f"/console/reports?site={site.key}&days=7")
    assert page.status_code == 200
    assert page.text.count("<svg") == 4 and "<script>" not in page.text
    assert "Opened per day" in page.text and "Breach rate per severity" in page.text
    export = await client.get(f"/console/reports/sla.csv?site={site.key}&days=7")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["metric", "key", "value"]
    assert sum(int(value) for metric, _, value in rows[1:] if metric == "opened") == 1
    assert ["backlog", "new", "1"] in rows
    token = site.api_token()
    api = httpx.get(f"{server.url}/api/v1/reports/sla?days=7",
                    headers={"Authorization": f"Bearer {token}"}).json()
    assert api["tickets"] == 1 and api["backlog"] == {"new": 1}
    await client.aclose()


async def test_admin_edits_the_policy_and_the_widget_offers_its_severities(
    server: ServerProcess, site: Site
) -> None:
    client = await sign_in(server, site)
    url = f"/console/admin/sites/{site.key}/policy"
    page = await client.get(url)
    assert page.status_code == 200 and "first_response = &#34;12h&#34;" in page.text
    csrf = csrf_of(page.text)
    refused = await client.post(url, data={"policy": POLICY})
    assert refused.status_code == 403  # no CSRF token
    bad = await client.post(url, data={"csrf": csrf, "policy": POLICY.replace('"1h"', '"soon"')})
    assert bad.status_code == 422 and "is not a duration" in bad.text
    saved = await client.post(url, data={"csrf": csrf, "policy": POLICY})
    assert saved.status_code == 303
    shown = run_cli("policy", "show", "--db", str(server.db), "--site", site.key).stdout
    assert 'key = "blocker"' in shown
    session = await start_session(server, site)
    assert [s["key"] for s in session["site"]["severities"]] == ["blocker", "question"]
    visitor = await VisitorClient.connect(server, site, token=session["token"])
    ack, receipt = await visitor.open_request("Down!", severity="blocker")
    assert ack["ticket"]["severity"] == "blocker"
    assert "blocker severity" in receipt["body"]
    await visitor.send("Hello", severity="normal")  # not in this site's policy
    assert (await visitor.recv_type("error"))["code"] == "invalid_severity"
    await visitor.close()
    await client.aclose()


async def test_agents_who_are_not_admins_cannot_edit_policies(
    server: ServerProcess, site: Site
) -> None:
    client = await sign_in(server, site, role="agent")
    assert (await client.get(f"/console/admin/sites/{site.key}/policy")).status_code == 403
    assert (await client.get(f"/console/reports?site={site.key}")).status_code == 200
    await client.aclose()
