"""GET /metrics: Prometheus text, scraped and parsed by prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pg import PgServer
from tests.support import Api, ServerProcess, VisitorClient, create_site

pytestmark = pytest.mark.anyio
TOKEN = "metrics-" + "0123456789abcdef"


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("metrics") / "metrics.db"
    server = ServerProcess(db, env={"WIDGET_METRICS_TOKEN": TOKEN,
                                    "WIDGET_MESSAGES_PER_VISITOR_MINUTE": "2"}).start()
    yield server
    server.stop()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(server.url + "/metrics",
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_messages_acks_sockets_and_limits_are_counted(metered: ServerProcess) -> None:
    site = create_site(metered.db)
    before = scrape(metered)
    visitor = await VisitorClient.connect(metered, site)
    during = scrape(metered)
    assert value(during, "widget_sockets_open", kind="widget") == \
        value(before, "widget_sockets_open", kind="widget") + 1
    ack, _ = await visitor.open_request("Export fails")
    await visitor.send("Still failing", conversation=ack["conversation"])
    assert (await visitor.recv_type("ack"))["seq"] == 3
    await visitor.send("Third in a minute", conversation=ack["conversation"])
    refused = await visitor.recv_type("error")
    assert refused["code"] == "rate_limited"
    api = Api(metered, site.api_token())
    await api.reply(ack["ticket"]["number"], "Fixed now")
    await api.aclose()
    await visitor.close()
    after = scrape(metered)
    assert value(after, "widget_messages_stored_total", author="visitor") - \
        value(before, "widget_messages_stored_total", author="visitor") == 2
    assert value(after, "widget_messages_stored_total", author="agent") - \
        value(before, "widget_messages_stored_total", author="agent") == 1
    assert value(after, "widget_ack_seconds_count") - value(before, "widget_ack_seconds_count") \
        == 2
    assert value(after, "widget_rate_limited_total") > value(before, "widget_rate_limited_total")
    assert value(after, "widget_writer_batches_total") > 0
    assert value(after, "widget_outbox_pending", outbox="mail") == 0


async def test_requests_are_counted_by_route_template_never_by_value(
    metered: ServerProcess,
) -> None:
    site = create_site(metered.db)
    async with metered.client(headers={"Authorization": f"Bearer {site.api_token()}"}) as api:
        for number in (71, 72, 73):
            assert (await api.get(f"/api/v1/tickets/{number}")).status_code == 404
        assert (await api.get("/no/such/path/9f8e7d")).status_code == 404
    text = httpx.get(metered.url + "/metrics",
                     headers={"Authorization": f"Bearer {TOKEN}"}).text
    samples = scrape(metered)
    assert value(samples, "widget_http_requests_total", method="GET",
                 route="/api/v1/tickets/{number:id}", status="404") >= 3
    assert value(samples, "widget_http_requests_total", method="GET", route="unmatched",
                 status="404") >= 1
    for leaked in ("71", "72", "9f8e7d", site.key):  # no label carries a value of a request
        assert f'"{leaked}"' not in text and f"/{leaked}" not in text


def test_metrics_are_refused_without_the_token(metered: ServerProcess) -> None:
    missing = httpx.get(metered.url + "/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.get(metered.url + "/metrics", headers={"Authorization": "Bearer nope-nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_token"


def test_metrics_are_off_until_configured(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 404
    assert "WIDGET_METRICS_TOKEN" in response.json()["error"]["message"]


def test_allowed_addresses_read_without_a_token(tmp_path: Path) -> None:
    allowed = ServerProcess(tmp_path / "allow.db",
                            env={"WIDGET_METRICS_ALLOW": "127.0.0.0/8"}).start()
    refused = ServerProcess(tmp_path / "refuse.db",
                            env={"WIDGET_METRICS_ALLOW": "10.0.0.0/8"}).start()
    try:
        response = httpx.get(allowed.url + "/metrics")
        assert response.status_code == 200
        assert "widget_sockets_open" in response.text
        response = httpx.get(refused.url + "/metrics")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    finally:
        allowed.stop()
        refused.stop()



def test_a_server_on_postgresql_reports_its_writer_and_outboxes(
        pg_server: PgServer, tmp_path: Path) -> None:
    server = ServerProcess(pg_server.fresh(), env={"WIDGET_METRICS_TOKEN": TOKEN},
                           log=tmp_path / "pg.log").start()
    try:
        samples = scrape(server)
    finally:
        server.stop()
    assert value(samples, "widget_writer_retries_total") >= 0
    assert ("widget_writer_jobs_total", ()) in samples
    assert ("widget_writer_commit_seconds_total", ()) not in samples  # SQLite's only
    assert value(samples, "widget_outbox_pending", outbox="webhook") == 0
