"""/api/v1 against its own OpenAPI description: schemathesis on a real server.

schemathesis (its command line, as a user would run it) reads the description the server
serves and sends what it makes from it, with a valid bearer token: boundary and invalid
values of every parameter and body (its coverage phase), then random ones, a bounded number
per operation. Every answer must not be a 5xx, must have a status the description lists for
that operation, a content type and a body that match it; a request the description calls
invalid must be refused (4xx), and a valid one accepted. So an endpoint and its description
cannot drift apart without failing this test.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support import ServerProcess, VisitorClient, create_site

EXAMPLES = 30  # random cases per operation, after the coverage phase's
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance",
          "negative_data_rejection", "positive_data_acceptance", "missing_required_header",
          "ignored_auth", "unsupported_method", "allow_header_conformance")
CONFIG = "[checks]\nenabled = false\n" + "".join(
    f"[checks.{check}]\nenabled = true\n" for check in CHECKS).replace(
    "[checks.negative_data_rejection]\n",  # the statuses that refuse a request here
    "[checks.negative_data_rejection]\nexpected-statuses = [400, 401, 404, 405, 409, 413, 422]\n"
) + """
# Which severities and assignees a site accepts depends on its policy and agents, which no
# static description can list: a well-formed but unknown one is a valid request answered 422.
[[operations]]
include-operation-id = "updateTicket"
checks.positive_data_acceptance.enabled = false

# Which attachment ids a message may carry depends on uploads made before (a well-formed
# but unknown id is answered 422 attachment_not_found), and which bytes may be uploaded on
# what they are: tests/test_attachments.py drives both with real files.
[[operations]]
include-operation-id = "postMessage"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-operation-id = "uploadAttachment"
checks.positive_data_acceptance.enabled = false

# Likewise whether a mail answers one of the site's conversations: any text is a valid
# body, and one that answers none is answered 422 recipient_refused (tests/test_mail_inbound.py).
[[operations]]
include-operation-id = "inboundEmail"
checks.positive_data_acceptance.enabled = false
"""


def closed_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """The description with every object in a response closed (no properties but the listed
    ones), so a field the server sends and the description lacks fails the run. The served
    description leaves them open: clients must ignore fields added later."""

    def close(schema: Any) -> None:
        if isinstance(schema, dict):
            if "properties" in schema:
                schema.setdefault("additionalProperties", False)
            for value in schema.values():
                close(value)
        elif isinstance(schema, list):
            for value in schema:
                close(value)

    closed = json.loads(json.dumps(spec))
    for operations in closed["paths"].values():
        for operation in operations.values():
            close(operation["responses"])
    close(closed["components"]["schemas"])
    return closed


def test_the_api_answers_as_its_openapi_description_says(server: ServerProcess,
                                                         tmp_path: Path) -> None:
    site = create_site(server.db)

    async def open_requests() -> None:  # tickets 1 to 3 exist, so 200s are checked too
        visitor = await VisitorClient.connect(server, site)
        for n in range(3):
            await visitor.open_request(f"Request {n}")
        await visitor.close()

    asyncio.run(open_requests())
    spec = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(closed_responses(spec)))
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
         "--config-file", str(config), "--no-color", "run", str(path), "--url", server.url,
         "--header", f"Authorization: Bearer {site.api_token()}",
         "--phases", "coverage,fuzzing",
         "--max-examples", str(EXAMPLES), "--workers", "1", "--seed", "25",
         "--suppress-health-check", "all", "--request-timeout", "10",
         "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "10 selected / 10 total" in result.stdout  # every operation of the description
