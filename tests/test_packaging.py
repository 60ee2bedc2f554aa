"""A wheel built from the repo, installed non-editable into a clean virtualenv, serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv_serves_the_widget_and_health(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("widget_server-*.whl"))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)],
                   check=True, capture_output=True, timeout=600)

    workdir = tmp_path / "elsewhere"  # not the repo: only the installed wheel is importable
    workdir.mkdir()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
    server = subprocess.Popen(
        [str(env_dir / "bin" / "widget-server"), "demo", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                health = httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server never answered"
                time.sleep(0.05)  # polling for the port to open
        assert health.json() == {"status": "ok"}
        loader = httpx.get(base + "/widget.js")
        assert loader.status_code == 200
        assert b"window.HelpWidget" in loader.content and b"__VERSION__" not in loader.content
        version = loader.content.split(b'version: "')[1].split(b'"')[0].decode()
        panel = httpx.get(f"{base}/widget/{version}/panel.js")
        assert panel.status_code == 200 and "export function mount" in panel.text
        demo = httpx.get(base + "/demo")
        assert demo.status_code == 200 and "/widget.js" in demo.text
        imported = subprocess.run(
            [str(python), "-c", "import widget_server, sys; print(widget_server.__file__)"],
            cwd=workdir, capture_output=True, text=True, check=True)
        assert str(env_dir) in imported.stdout  # really the installed copy
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
