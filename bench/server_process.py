"""A widget-server under test as a real subprocess, and what a run records about itself.

Used by the suite (``python -m bench``) and by ``chat_load.py``: the server (``widget-server
serve`` on a free loopback port, started from the working tree or from a ``--ref``
snapshot), the CLI calls that prepare its database, an agent signed in and an API token,
its CPU time and memory from /proc, what is stored once it has stopped, and the machine
and git state a result belongs to.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
# Where the server code comes from: the repository's working tree, or (--ref) an exported
# snapshot of one commit. `python -m widget_server` runs with this as its working
# directory, so the package found there is imported before the installed (editable) one.
CODE = REPO
SNAPSHOT_COMMIT: str | None = None
HOST = "127.0.0.1"

# --------------------------------------------------------------------------- server


# The server under test runs with the abuse limits off (0): all the load comes from one
# address and a few visitors send far more than a person would. Unknown names are ignored
# by servers that predate them (--ref).
BENCH_LIMITS = {name: "0" for name in (
    "WIDGET_SESSIONS_PER_IP_HOUR", "WIDGET_REQUESTS_PER_VISITOR_HOUR",
    "WIDGET_REQUESTS_PER_IP_HOUR", "WIDGET_MESSAGES_PER_VISITOR_MINUTE",
    "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR",
    "WIDGET_WS_CONNECTS_PER_IP_MINUTE", "WIDGET_WS_OPEN_PER_IP", "WIDGET_WS_FRAMES_PER_MINUTE")}

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=CODE,
    )
    if result.returncode != 0:
        raise RuntimeError(f"widget-server {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class Site:
    key: str
    origin: str


def init_site(db: Path | str, env: dict[str, str]) -> Site:
    origin = "https://bench-shop.test"
    out = run_cli("init", "--db", str(db), "--site-name", "Bench shop", "--origin", origin,
                  env=env)
    for line in out.splitlines():
        if line.startswith("site key: "):
            return Site(key=line.split(": ", 1)[1].strip(), origin=origin)
    raise RuntimeError(f"`widget-server init` printed no site key:\n{out}")


class Server:
    """`widget-server serve` as a real subprocess on a free loopback port."""

    def __init__(self, db: Path | str, log: Path, env: dict[str, str]) -> None:
        self.db, self.log, self.env = db, log, env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/widget"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            # Own session: a Ctrl-C on the terminal reaches us, and we stop the server.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "widget_server", "serve", "--db", str(self.db),
                 "--host", HOST, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=CODE,
                start_new_session=True,
            )
        wait_healthy(self, timeout)

    def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL after 15 s; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process (all threads), from /proc."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_healthy(server: Server, timeout: float, poll: float = 0.05) -> None:
    """Until the server's /healthz answers 200; raise if it exits or takes too long."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(poll)
    raise RuntimeError("server did not answer /healthz in time")


def system_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / ticks, total / ticks


def cpu_pressure_us() -> int | None:
    """Total microseconds some task waited for a CPU (PSI), if the kernel reports it."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def export_snapshot(ref: str, dest: Path) -> str:
    """Extract the tree of ``ref`` into ``dest`` (read-only for the repository)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"--ref {ref}: not a commit of {REPO}")
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO,
                             capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    where = subprocess.run(
        [sys.executable, "-c", "import widget_server; print(widget_server.__file__)"],
        cwd=dest, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(dest.resolve()):
        raise SystemExit(f"the snapshot is not what gets imported ({where}); cannot use --ref")
    return commit


def git_info() -> dict[str, Any]:
    if CODE != REPO:
        return {"commit": SNAPSHOT_COMMIT, "source": "snapshot (--ref)",
                "server_code_dirty": False, "server_code_changes": []}
    status = git("status", "--porcelain", "--", "widget_server")
    return {"commit": git("rev-parse", "HEAD"), "source": "working tree",
            # uncommitted changes to the server code: the run did not measure `commit` alone
            "server_code_dirty": None if status is None else bool(status),
            "server_code_changes": None if status is None else status.splitlines()[:20]}


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model,
        "packages": {**{name: version(name) for name in
                        ("widget-server", "websockets", "uvicorn", "starlette", "uvloop",
                         "httpx")},
                     "sqlite": sqlite3.sqlite_version},
        "git": git_info(),
    }


# --db postgresql://...: each scenario's server gets a database of its own, made with this
# URL's credentials on its server and dropped at the end of the run
PG_ADMIN: str | None = None
PG_MADE: list[str] = []


def _pg(url: str, sql: str) -> Any:
    import asyncio

    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_url(name: str) -> str:
    assert PG_ADMIN is not None
    base, _, _ = PG_ADMIN.partition("?")[0].rpartition("/")
    return f"{base}/{name}"


def scenario_db(workdir: Path) -> Path | str:
    """The database a scenario's server runs on: a SQLite file in ``workdir``, or with
    ``--db`` a new PostgreSQL database."""
    if PG_ADMIN is None:
        return workdir / "bench.db"
    name = f"widget_bench_{uuid.uuid4().hex[:10]}"
    _pg(PG_ADMIN, f'CREATE DATABASE "{name}"')
    PG_MADE.append(name)
    return _pg_url(name)


def drop_scenario_dbs() -> None:
    while PG_MADE and PG_ADMIN is not None:
        _pg(PG_ADMIN, f'DROP DATABASE IF EXISTS "{PG_MADE.pop()}" WITH (FORCE)')


def count_visitor_messages(db: Path | str) -> dict[str, int]:
    if str(db).startswith("postgresql://"):
        row = _pg(str(db), """SELECT
            (SELECT COUNT(*) FROM messages WHERE author_type = 'visitor') AS visitor,
            (SELECT COUNT(DISTINCT client_msg_id) FROM messages
              WHERE author_type = 'visitor') AS dist,
            (SELECT COUNT(*) FROM messages WHERE author_type = 'system') AS system,
            (SELECT COUNT(*) FROM tickets) AS tickets""")[0]
        return {"visitor_messages": row["visitor"], "distinct_client_msg_ids": row["dist"],
                "system_messages": row["system"], "tickets": row["tickets"]}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        visitor, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT client_msg_id) FROM messages "
            "WHERE author_type = 'visitor'").fetchone()
        system = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE author_type = 'system'").fetchone()[0]
        tickets = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    finally:
        conn.close()
    return {"visitor_messages": visitor, "distinct_client_msg_ids": distinct,
            "system_messages": system, "tickets": tickets}


def log_problems(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    flagged = [line for line in lines
               if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "WARNING",
                                                "Exception"))]
    return {"lines": len(lines), "flagged_lines": len(flagged), "first_flagged": flagged[:10]}


# --------------------------------------------------------------------------- agents


AGENT_PASSWORD = "bench-agent-pw-1"


def sign_in_agent(server: Server, site: Site, env: dict[str, str]) -> str:
    """Create an admin agent with the CLI and sign in; return the Cookie header."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password",
            AGENT_PASSWORD, "--role", "admin", "--site", site.key, env=env)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        form = client.get("/console/login").text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("the sign-in form has no login_token")
        response = client.post("/console/login", data={
            "email": email, "password": AGENT_PASSWORD, "login_token": token.group(1)})
        if response.status_code != 303:
            raise RuntimeError(f"console sign-in: {response.status_code}")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def api_token(server: Server, env: dict[str, str]) -> str:
    out = run_cli("token", "create", "--db", str(server.db), "--name", "bench-agent", env=env)
    return out.strip().splitlines()[-1].strip()
