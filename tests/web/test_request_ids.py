"""X-Request-Id on every answer and in JSON errors; WIDGET_LOG_FORMAT=json access lines."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support import ServerProcess, create_site


def test_every_answer_has_a_request_id_and_errors_repeat_it(server: ServerProcess) -> None:
    ok = httpx.get(server.url + "/healthz")
    missing = httpx.get(server.url + "/api/v1/tickets")
    ids = {ok.headers["x-request-id"], missing.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(found) >= 16 for found in ids)
    assert missing.status_code == 401
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]


def test_a_proxys_request_id_is_kept_and_a_hostile_one_replaced(server: ServerProcess) -> None:
    kept = httpx.get(server.url + "/healthz", headers={"X-Request-Id": "nginx-4f2a9c81d3e0"})
    assert kept.headers["x-request-id"] == "nginx-4f2a9c81d3e0"
    for hostile in ("a b\tc", "<script>", "x" * 200, "short"):
        replaced = httpx.get(server.url + "/healthz", headers={"X-Request-Id": hostile})
        assert replaced.headers["x-request-id"] != hostile


def test_json_logs_are_one_object_per_line_with_request_route_status_and_site(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "json.db",
                           env={"WIDGET_LOG_FORMAT": "json", "WIDGET_LOG_LEVEL": "info"})
    server.start()
    try:
        site = create_site(server.db)
        response = httpx.post(server.url + "/api/widget/v1/session",
                              json={"site": site.key}, headers={"Origin": site.origin})
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        httpx.get(server.url + "/help/requests/SECRET-LINK-TOKEN")
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys()
                         for line in lines)
    session = [line for line in lines if line.get("request_id") == request_id]
    assert len(session) == 1, session
    assert session[0]["route"] == "/api/widget/v1/session"
    assert session[0]["status"] == 200 and session[0]["method"] == "POST"
    assert isinstance(session[0]["site"], int)  # the site the route resolved
    assert isinstance(session[0]["duration_ms"], float)
    assert "SECRET-LINK-TOKEN" not in server.log_text()  # redaction still applies
