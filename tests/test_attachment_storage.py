"""Where attachment files go and when they leave: an oversize upload refused without the
server's memory growing, the disk's content-addressed files, erasure and the sweep of
unsent uploads deleting them, and the S3 backend against a local S3-compatible server
(moto's, from PyPI), skipped with its reason when it cannot start."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import raw_http
from tests.clocked import TimeShift
from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    free_port,
    run_cli,
    service_missing,
    start_session,
)

pytestmark = pytest.mark.anyio
MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc")


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, "PNG")
    return out.getvalue()


async def upload(server: ServerProcess, site: Site, token: str, data: bytes,
                 name: str = "file.png") -> dict[str, str]:
    async with server.client() as client:
        answer = await client.post("/api/widget/v1/attachments",
                                   files={"file": (name, data)},
                                   headers={"Origin": site.origin,
                                            "Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    found: dict[str, str] = answer.json()["attachment"]
    return found


def chunked_upload(port: int, site: Site, token: str, total: int) -> tuple[bytes, int]:
    """POST ``total`` bytes of file, chunked, until the server answers; its answer and how
    much of the file was sent by then."""
    boundary = "----attachmenttest"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"big.log\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    with raw_http.connect(port) as sock:
        sock.sendall(raw_http.head("POST", "/api/widget/v1/attachments", {
            "Origin": site.origin, "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Transfer-Encoding": "chunked"}))
        return raw_http.stream_chunked(sock, total, chunk=256 * 1024, prefix=part)


async def test_an_oversize_upload_gets_413_without_the_server_growing(
        fresh_server: ServerProcess) -> None:
    server = fresh_server.start()
    assert server.process is not None
    site = create_site(server.db)
    token = (await start_session(server, site))["token"]
    await upload(server, site, token, png("red"))  # Pillow and friends loaded
    await upload(server, site, token, b"warm up\n" * (MB // 8), "warm.log")
    before = rss_bytes(server.process.pid)

    answer, sent = await asyncio.to_thread(chunked_upload, server.port, site, token, 50 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 50 * MB  # answered while the body was still coming
    grown = rss_bytes(server.process.pid) - before
    assert grown < 8 * MB, f"the server grew by {grown / MB:.1f} MB for a refused upload"

    # a declared length past the cap: answered before a byte of the body is sent
    with raw_http.connect(server.port) as sock:
        sock.sendall(raw_http.head("POST", "/api/widget/v1/attachments", {
            "Origin": site.origin, "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=zz",
            "Content-Length": str(50 * MB)}))
        declared = await asyncio.to_thread(raw_http.read_all, sock)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:100]
    assert b'"attachment_too_large"' in declared
    assert not list((server.db.parent / "widget-data" / "spool").iterdir())  # spools gone


async def test_erasure_deletes_a_file_only_when_no_row_needs_it(
        fresh_server: ServerProcess) -> None:
    server = fresh_server.start()
    site = create_site(server.db)
    files = server.db.parent / "widget-data" / "files"
    shared, alone = png("navy"), png("olive")
    leaving = await start_session(server, site)
    staying = await start_session(server, site)
    for session, data in ((leaving, shared), (leaving, alone), (staying, shared)):
        visitor = await VisitorClient.connect(server, site, token=session["token"])
        attachment = await upload(server, site, session["token"], data)
        await visitor.open_request("see attached", attachments=[attachment["id"]])
        await visitor.close()
    stored = {hashlib.sha256(data).hexdigest() for data in (shared, alone)}
    assert {path.name for path in files.rglob("*") if path.is_file()} == stored

    erased = await asyncio.to_thread(
        run_cli, "visitor", "erase", "--db", str(server.db), "--site", site.key,
        "--visitor", leaving["visitor"]["id"], "--yes")
    assert "attachment files deleted: 1" in erased.stdout
    left = {path.name for path in files.rglob("*") if path.is_file()}
    assert left == {hashlib.sha256(shared).hexdigest()}  # the other visitor still has it


async def test_uploads_never_sent_are_swept_after_24_hours(tmp_path: Path) -> None:
    shift = TimeShift(tmp_path / "offset")
    server = ServerProcess(tmp_path / "widget.db", launcher=shift.launcher).start()
    try:
        site = create_site(server.db)
        token = (await start_session(server, site))["token"]
        sent_one = await upload(server, site, token, png("teal"))
        unsent = await upload(server, site, token, b"never sent\n", "draft.log")
        visitor = await VisitorClient.connect(server, site, token=token)
        await visitor.open_request("with a picture", attachments=[sent_one["id"]])
        await visitor.close()

        def sweep() -> str:
            done = run_cli("retention", "run", "--db", str(server.db),
                           launcher=shift.launcher)
            return done.stdout

        shift.path.write_text(str(23 * 3600))
        assert "attachment files deleted" not in await asyncio.to_thread(sweep)
        shift.path.write_text(str(25 * 3600))
        assert "attachment files deleted: 1" in await asyncio.to_thread(sweep)
        async with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
            assert (await client.get(unsent["url"])).status_code == 404
            assert (await client.get(sent_one["url"])).status_code == 200
    finally:
        server.stop()


# -- S3


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server on a free port, as a subprocess."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        service_missing("a local S3 server", f"install the test extra (moto[server]): {exc}")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                service_missing("a local S3 server", f"moto exited: {log.read_text()[-300:]}")
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.1)  # waiting for the port, not for time
        else:
            service_missing("a local S3 server", "moto did not open its port in 20 s")
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def test_the_s3_backend_keeps_serves_and_deletes_files(
        tmp_path: Path, s3_endpoint: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="widget-files")
    host = s3_endpoint.removeprefix("http://")
    server = ServerProcess(tmp_path / "widget.db", env={
        "WIDGET_S3_URL": f"http://test:test@{host}/widget-files/prod"}).start()
    try:
        site = create_site(server.db)
        session = await start_session(server, site)
        data = png("maroon")
        attachment = await upload(server, site, session["token"], data)
        key = "prod/" + hashlib.sha256(data).hexdigest()
        assert s3.get_object(Bucket="widget-files", Key=key)["Body"].read() == data
        assert not (tmp_path / "widget-data" / "files").exists()  # nothing on disk
        visitor = await VisitorClient.connect(server, site, token=session["token"])
        await visitor.open_request("from S3", attachments=[attachment["id"]])
        await visitor.close()
        async with server.client(
                headers={"Authorization": f"Bearer {session['token']}"}) as client:
            served = await client.get(attachment["url"])
        assert served.status_code == 200 and served.content == data

        await asyncio.to_thread(
            run_cli, "visitor", "erase", "--db", str(server.db), "--site", site.key,
            "--visitor", session["visitor"]["id"], "--yes",
            env={"WIDGET_S3_URL": f"http://test:test@{host}/widget-files/prod"})
        listed = s3.list_objects_v2(Bucket="widget-files").get("Contents", [])
        assert [entry["Key"] for entry in listed] == []
    finally:
        server.stop()
