"""`widget-server demo`: a ready demo site whose data and credentials last between runs.

The admin's password and the demo's API token are kept in a JSON file beside the demo's
database (``widget-demo.db`` -> ``widget-demo-credentials.json``, readable by its owner
only), so starting the demo again keeps its tickets, its password and the console's sessions;
``--fresh`` deletes the database and the file and starts over. The demo site gets a policy
with a distinct first-response target per severity (docs/policy.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from widget_server.api_tokens import hash_api_token, new_api_token
from widget_server.article_import import import_articles, sample_articles
from widget_server.config import DEMO_SITE_SETTING, Settings
from widget_server.models import normalize_origin
from widget_server.passwords import hash_password, new_password, verify_password
from widget_server.store import Store

DEMO_ADMIN = "admin@example.com"
DEMO_DB = "./widget-demo.db"
# the demo's own policy: 12 hours stays the ceiling, as in the default policy, and each
# severity below Critical gets more of it, so choosing one changes the promise
DEMO_POLICY_TOML = '''\
# The demo's policy: distinct first-response targets per severity, 12 hours at most, 24/7.
pause_statuses = ["pending"]
auto_close_days = 7
severity_set_by = "visitor_proposes"
default_severity = "normal"

[[severity]]
key = "critical"
label = "Critical"
description = "The product is down or data is at risk."
first_response = "1h"

[[severity]]
key = "high"
label = "High"
description = "A major feature is broken and there is no workaround."
first_response = "4h"

[[severity]]
key = "normal"
label = "Normal"
description = "Something does not work as expected."
first_response = "8h"

[[severity]]
key = "low"
label = "Low"
description = "A question or a minor issue."
first_response = "12h"
'''


def credentials_path(db: str) -> Path:
    """The file beside the demo's database that keeps its password and API token."""
    if "://" in db:  # a database server: the file goes to the working directory
        return Path("widget-demo-credentials.json")
    path = Path(db)
    return path.with_name(f"{path.stem}-credentials.json")


def forget(db: str) -> None:
    """``--fresh``: the demo's database (a file) and its credentials file, gone."""
    files = [credentials_path(db)]
    if "://" not in db:
        files += [Path(db + suffix) for suffix in ("", "-wal", "-shm")]
    for file in files:
        file.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, str)} \
        if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, str]) -> None:
    # created readable by its owner only: it holds a password and a token
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.write("\n")


async def _kept_credentials(store: Store, kept: dict[str, str]) -> bool:
    """Whether the kept password and token still work on this database."""
    found = await store.agent_password_hash(DEMO_ADMIN)
    if not found or not found[1] or not verify_password(kept.get("password", ""), found[1]):
        return False
    return await store.find_api_agent(hash_api_token(kept.get("api_token", ""))) is not None


async def prepare_demo(store: Store, settings: Settings) -> list[str]:
    """The demo site, its admin, token, policy and sample articles; the lines to print."""
    origins = {f"http://127.0.0.1:{settings.port}", f"http://localhost:{settings.port}",
               normalize_origin(settings.base_url)}
    site, created = await store.ensure_site("Demo", sorted(origins))
    await store.set_setting(DEMO_SITE_SETTING, site.key)
    if created or site.policy is None:
        await store.set_site_policy(site.id, DEMO_POLICY_TOML)
    path = credentials_path(settings.db)
    kept = _read(path)
    if await _kept_credentials(store, kept):
        password, token, again = kept["password"], kept["api_token"], True
    else:
        password, token, again = new_password(), new_api_token(), False
        await store.ensure_agent(DEMO_ADMIN, "Demo Admin", "admin", None)
        await store.set_agent_password(DEMO_ADMIN, hash_password(password))
        agent = await store.get_agent_by_email(DEMO_ADMIN)
        assert agent is not None
        await store.create_api_token("demo", hash_api_token(token), site.id, agent.id)
        _write(path, {"admin_email": DEMO_ADMIN, "password": password, "api_token": token})
    samples = sample_articles()
    await import_articles(store, site.id, samples)
    return [
        f"Console:         {settings.base_url}/console",
        f"Help centre:     {settings.base_url}/help ({len(samples)} sample articles)",
        f"Demo host page:  {settings.base_url}/demo",
        f"Admin sign-in:   {DEMO_ADMIN} / {password}",
        f"API token:       {token}",
        f"Site key:        {site.key}",
        f"Credentials:     {path} ({'kept from the last run' if again else 'new'}; "
        "--fresh starts over)",
    ]
