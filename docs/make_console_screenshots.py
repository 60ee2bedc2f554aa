"""Regenerate docs/console-*.png and docs/help-*.png from a real server with sample data.

    python docs/make_console_screenshots.py [--prefix before-]
    (needs the test extra and Debian's chromium)

Each page is shot at 1280x800 and 390x844, in the light colour scheme and, for the desktop
size, the dark one too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM_FLAGS, chromium_path  # noqa: E402
from tests.support import (  # noqa: E402
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    run_cli,
    with_store,
)
from widget_server.store import Store  # noqa: E402

EMAIL, PASSWORD = "dana@example.com", "screenshots-password-1"
REQUESTS = [
    ("The nightly CSV export has been empty since yesterday's update.", "high"),
    ("How do I add a second admin to our account?", "low"),
    ("Checkout fails with error 502 for every customer.", "critical"),
    ("Can I change the invoice address for last month?", "normal"),
]
SIZES = {"desktop": (1280, 800), "mobile": (390, 844)}


async def fill(server: ServerProcess, site: Site) -> None:
    for body, severity in REQUESTS:
        visitor = await VisitorClient.connect(server, site)
        await visitor.open_request(body, severity=severity)
        await visitor.close()
    api = Api(server, site.api_token("Sam Rivera"))
    await api.reply(1, "Thanks, we can reproduce it. A fix is on its way; meanwhile "
                       "the export works from **Reports > Download**.")
    await api.aclose()


def away(db: Path, email: str) -> None:
    async def work(store: Store) -> None:
        agent = await store.get_agent_by_email(email)
        assert agent is not None
        await store.set_presence(agent.id, "away")

    with_store(db, work)


def shoot(base: str, site: Site, prefix: str) -> None:
    pages = {
        "console-inbox": "/console",
        "console-ticket": f"/console/tickets/{site.key}/1",
        "console-reports": "/console/reports",
        "help-home": "/help",
        "help-article": "/help/articles/exporting-data",
    }
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        for scheme in ("light", "dark"):
            for size, (width, height) in SIZES.items():
                if scheme == "dark" and size == "mobile":
                    continue
                context = browser.new_context(viewport={"width": width, "height": height},
                                              color_scheme=scheme)
                page = context.new_page()
                sign_in(page, base)
                for name, path in pages.items():
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    suffix = size if scheme == "light" else f"{size}-dark"
                    page.screenshot(path=str(ROOT / "docs" / f"{prefix}{name}-{suffix}.png"))
                context.close()
        browser.close()


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/console/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Inbox").wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", default="", help="file name prefix, e.g. before-")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shots.db"
        server = ServerProcess(db)
        site = create_site(db, origin=server.url, name="Acme")
        server.start()
        try:
            run_cli("agent", "add", "--db", str(db), "--email", EMAIL, "--password", PASSWORD,
                    "--name", "Dana Agent", "--site", site.key)
            run_cli("articles", "import", "--db", str(db), "--site", site.key,
                    str(ROOT / "widget_server" / "sample_articles"))
            run_cli("agent", "add", "--db", str(db), "--email", "lee@example.com",
                    "--name", "Lee Park", "--site", site.key)
            asyncio.run(fill(server, site))
            away(db, "lee@example.com")
            shoot(server.url, site, args.prefix)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
