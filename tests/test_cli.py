"""The `widget-server` command as a user runs it: a subprocess (docs/configuration.md)."""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ServerProcess, Site, VisitorClient, free_port, run_cli
from widget_server.passwords import verify_password

ORIGIN = "https://app.example.com"


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def field(output: str, label: str) -> str:
    """The value after ``label`` on the first line that starts with it."""
    for line in output.splitlines():
        if line.startswith(label):
            return line[len(label):].strip()
    raise AssertionError(f"no line starts with {label!r} in:\n{output}")


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str,
                         code: int = 1) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def init(db: Path, name: str, *origins: str, extra: tuple[str, ...] = ()
         ) -> subprocess.CompletedProcess[str]:
    args = ["init", "--db", str(db), "--site-name", name]
    for origin in origins:
        args += ["--origin", origin]
    return run_cli(*args, *extra, check=False)


# -- help


@pytest.mark.parametrize("command", [
    [], ["serve"], ["init"], ["token"], ["token", "create"], ["demo"]],
    ids=["widget-server", "serve", "init", "token", "token-create", "demo"])
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli(*command, "--help", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: widget-server")
    assert " ".join(["widget-server", *command]) in result.stdout.splitlines()[0]
    assert result.stderr == ""


def test_version() -> None:
    from widget_server import __version__

    result = run_cli("--version")
    assert __version__ in result.stdout


def test_no_command_is_an_error() -> None:
    result = run_cli(check=False)
    assert result.returncode != 0
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


# -- init


def test_init_prints_key_and_snippet(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    result = init(db, "Shop", ORIGIN)
    assert result.returncode == 0, result.stderr
    key = field(result.stdout, "site key:")
    assert key
    assert field(result.stdout, "site created:") == "Shop"
    assert f'data-site="{key}"' in result.stdout
    assert "/widget.js" in result.stdout
    assert query_db(db, "SELECT key, name FROM sites") == [(key, "Shop")]


def test_init_twice_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    admin = ("--admin-email", "boss@example.com", "--admin-password", "s3cret-one-ok")
    first = init(db, "Shop", ORIGIN, extra=admin)
    assert first.returncode == 0, first.stderr
    assert "admin created: boss@example.com" in first.stdout

    second = init(db, "Shop", "https://other.example.com/",
                  extra=("--admin-email", "boss@example.com", "--admin-password", "s3cret-two-ok"))
    assert second.returncode == 0, second.stderr
    assert field(second.stdout, "site exists:") == "Shop"
    assert field(second.stdout, "site key:") == field(first.stdout, "site key:")
    assert field(second.stdout, "allowed origins:") == f"{ORIGIN}, https://other.example.com"
    assert "admin exists: boss@example.com" in second.stdout

    assert query_db(db, "SELECT COUNT(*) FROM sites") == [(1,)]
    assert query_db(db, "SELECT COUNT(*) FROM agents") == [(1,)]
    from widget_server.store.sqlite_schema import available_migrations

    available = [version for version, _, _ in available_migrations()]
    assert query_db(db, "SELECT MAX(version), COUNT(*) FROM schema_migrations") == [
        (max(available), len(available))]
    (stored,) = query_db(db, "SELECT password_hash FROM agents")[0]
    assert verify_password("s3cret-two-ok", stored)  # the rerun set the new password
    assert not verify_password("s3cret-one-ok", stored)

    third = init(db, "Shop", ORIGIN)  # an origin it already has: not listed twice
    assert field(third.stdout, "allowed origins:") == f"{ORIGIN}, https://other.example.com"


@pytest.mark.parametrize("origin", [
    "not a url", "https://a.com/path", "ftp://a.com", "https://", "app.example.com"])
def test_init_refuses_a_bad_origin(tmp_path: Path, origin: str) -> None:
    db = tmp_path / "widget.db"
    result = init(db, "Shop", origin)
    assert_clean_failure(result, "widget-server: error:", "not an origin")
    assert repr(origin) in result.stderr  # it names what was wrong
    if db.exists():
        assert query_db(db, "SELECT COUNT(*) FROM sites") == [(0,)]


def test_init_needs_site_name_and_origin(tmp_path: Path) -> None:
    result = run_cli("init", "--db", str(tmp_path / "w.db"), "--origin", ORIGIN, check=False)
    assert result.returncode == 2
    assert "--site-name" in result.stderr
    assert "Traceback" not in result.stderr


# -- token create


def test_token_create_without_a_site(tmp_path: Path) -> None:
    result = run_cli("token", "create", "--db", str(tmp_path / "w.db"), "--name", "ci",
                     check=False)
    assert_clean_failure(result, "no site", "widget-server init")
    assert result.stdout == ""


def test_token_create_with_two_sites_needs_site(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert init(db, "One", ORIGIN).returncode == 0
    assert init(db, "Two", "https://two.example.com").returncode == 0
    result = run_cli("token", "create", "--db", str(db), "--name", "ci", check=False)
    assert_clean_failure(result, "--site")
    assert result.stdout == ""
    assert query_db(db, "SELECT COUNT(*) FROM api_tokens") == [(0,)]


def test_token_create_with_unknown_site_or_agent(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert init(db, "One", ORIGIN).returncode == 0
    result = run_cli("token", "create", "--db", str(db), "--name", "ci", "--site", "site_nope",
                     check=False)
    assert_clean_failure(result, "site_nope")
    result = run_cli("token", "create", "--db", str(db), "--name", "ci",
                     "--agent", "ghost@example.com", check=False)
    assert_clean_failure(result, "ghost@example.com")
    assert query_db(db, "SELECT COUNT(*) FROM api_tokens") == [(0,)]


@pytest.mark.anyio
async def test_created_tokens_work_against_a_running_server(
    server: ServerProcess, site: Site
) -> None:
    email = f"lead-{uuid.uuid4().hex[:6]}@example.com"
    name = f"Lead {uuid.uuid4().hex[:6]}"
    assert init(server.db, name, "https://lead.test", extra=("--admin-email", email)
                ).returncode == 0
    plain = site.api_token("integration")
    as_agent = run_cli("token", "create", "--db", str(server.db), "--name", "desk",
                       "--site", site.key, "--agent", email).stdout.strip()
    assert plain != as_agent
    assert plain.startswith("wst_") and "\n" not in plain

    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Token check")
    await visitor.close()
    async with httpx.AsyncClient(base_url=server.url) as client:
        listing = await client.get("/api/v1/tickets",
                                   headers={"Authorization": f"Bearer {plain}"})
        assert listing.status_code == 200, listing.text
        assert [t["subject"] for t in listing.json()["tickets"]] == ["Token check"]
        reply = await client.post("/api/v1/tickets/1/messages", json={"body": "Hello"},
                                  headers={"Authorization": f"Bearer {as_agent}"})
        assert reply.status_code == 201, reply.text
        assert reply.json()["message"]["author"]["name"] == email.split("@")[0]
    (stored,) = query_db(server.db, "SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?",
                         (plain,))[0]
    assert stored == 0  # only a hash of the token is stored


# -- serve and the database URL


def test_serve_with_a_bad_port_variable(tmp_path: Path) -> None:
    result = run_cli("serve", "--db", str(tmp_path / "w.db"),
                     env={"WIDGET_PORT": "notanumber"}, check=False)
    assert result.returncode != 0
    assert "WIDGET_PORT" in result.stderr
    assert "notanumber" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_port_flag(tmp_path: Path) -> None:
    result = run_cli("serve", "--db", str(tmp_path / "w.db"), "--port", "eighty", check=False)
    assert result.returncode == 2
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


POSTGRES = "postgresql://postgres@127.0.0.1:1/nothing"  # no server listens on port 1


@pytest.mark.parametrize("command", [
    ["init", "--db", POSTGRES, "--site-name", "S", "--origin", ORIGIN],
    ["token", "create", "--db", POSTGRES, "--name", "ci"],
    ["demo", "--db", POSTGRES, "--port", "0"],
    ["serve", "--db", POSTGRES, "--port", "0"],
], ids=["init", "token-create", "demo", "serve"])
def test_a_postgresql_server_that_cannot_be_reached_fails_cleanly(command: list[str]) -> None:
    result = run_cli(*command, check=False)
    assert_clean_failure(result, "widget-server: error: cannot use the database:")


# -- demo


class LineReader:
    """Collects a process's output lines on a thread so reads can have a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, prefix: str, deadline: float) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {prefix!r} line in time; output so far:\n"
                                     + "".join(self.seen))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("the process ended early:\n" + "".join(self.seen))
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self) -> str:
        """Everything the process printed, once it has ended."""
        self._thread.join(timeout=10)
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def wait_healthy(url: str, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo server exited"
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # polling for the port to open; the condition is health
    raise AssertionError("the demo server did not become healthy in time")


def test_demo_serves_a_ready_site(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "demo.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "demo", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "WIDGET_LOG_LEVEL": "warning"},
    )
    reader = LineReader(process)
    try:
        deadline = time.monotonic() + 30
        reader.until("API token:", deadline)
        output = "".join(reader.seen)
        base = f"http://127.0.0.1:{port}"
        assert field(output, "Demo host page:") == f"{base}/demo"
        email, _, password = field(output, "Admin sign-in:").partition(" / ")
        assert email == "admin@example.com" and password
        token = field(output, "API token:")
        assert token.startswith("wst_")

        wait_healthy(base, process, deadline)
        (stored_hash,) = query_db(db, "SELECT password_hash FROM agents WHERE email = ?",
                                  (email,))[0]
        assert verify_password(password, stored_hash)
        (site_key,) = query_db(db, "SELECT key FROM sites WHERE name = 'Demo'")[0]

        page = httpx.get(f"{base}/demo")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert site_key in page.text
        assert f'data-site="{site_key}"' in page.text
        assert f'src="{base}/widget.js"' in page.text
        assert "SITE_KEY" not in page.text and "support.example.com" not in page.text

        assert httpx.get(f"{base}/widget.js").status_code == 200
        listing = httpx.get(f"{base}/api/v1/tickets",
                            headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 200, listing.text
        session = httpx.post(f"{base}/api/widget/v1/session", json={"site": site_key},
                             headers={"Origin": base})
        assert session.status_code == 200, session.text  # the demo page's origin is allowed
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        everything = reader.finish()
        assert process.stdout is not None
        process.stdout.close()
    assert "Traceback" not in everything
