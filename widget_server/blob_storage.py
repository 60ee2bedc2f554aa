"""Where attachment files live: a folder on disk or an S3-compatible bucket, behind one small
interface. Files are content-addressed: the key is the SHA-256 of the bytes (hex), so equal
uploads share one file, and a stored file never changes.

Disk: ``WIDGET_DATA_DIR/files/ab/cd/<sha256>``, written to a temporary file in the same
folder tree and renamed into place after an fsync (a reader never sees half a file).
S3: ``WIDGET_S3_URL`` (see ``parse_s3_url``), through boto3 in worker threads: its managed
transfers split large files into multipart uploads, and it reads credentials the standard
way (environment, shared files, instance roles) when the URL carries none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 64 * 1024
KEY = re.compile(r"[0-9a-f]{64}")


class BlobStore(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Store the file ``source`` under ``key`` (its SHA-256); a no-op if present."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks; FileNotFoundError if absent."""
        ...

    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...


def _checked(key: str) -> str:
    if not KEY.fullmatch(key):  # keys are ours, but a path is built from them
        raise ValueError("a storage key is a SHA-256 in hex")
    return key


class DiskBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key[2:4] / key

    async def put(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> None:
        target = self.path(key)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{key}.{os.getpid()}.{id(source)}.tmp")
        try:
            with open(source, "rb") as reading, open(temporary, "wb") as writing:
                while chunk := reading.read(1024 * 1024):
                    writing.write(chunk)
                writing.flush()
                os.fsync(writing.fileno())
            os.replace(temporary, target)  # atomic: the whole file or none
            _fsync_folder(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    async def read(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).exists)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(key).unlink)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class S3Location:
    endpoint: str | None  # None: AWS itself
    bucket: str
    prefix: str
    region: str | None
    access_key: str | None
    secret_key: str | None


def parse_s3_url(text: str) -> S3Location:
    """``s3://BUCKET[/PREFIX]`` (AWS, region from ``?region=`` or the environment) or
    ``http(s)://[KEY:SECRET@]HOST[:PORT]/BUCKET[/PREFIX][?region=R]`` (any S3-compatible
    endpoint: MinIO, Ceph, Garage, R2...). Without KEY:SECRET, boto3's standard chain
    (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared files, roles) supplies them."""
    parts = urlsplit(text.strip())
    query = parse_qs(parts.query)
    region = query.get("region", [None])[0]
    if parts.scheme == "s3":
        bucket, path = parts.hostname or "", parts.path
        endpoint = None
    elif parts.scheme in {"http", "https"} and parts.hostname:
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        endpoint = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        bucket, _, path = parts.path.lstrip("/").partition("/")
    else:
        raise ValueError("must be s3://BUCKET/PREFIX or http(s)://HOST/BUCKET/PREFIX")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ValueError("names no valid bucket")
    prefix = path.strip("/")
    return S3Location(endpoint=endpoint, bucket=bucket, prefix=f"{prefix}/" if prefix else "",
                      region=region, access_key=unquote(parts.username or "") or None,
                      secret_key=unquote(parts.password or "") or None)


class S3Blobs:
    """An S3-compatible bucket through boto3; each call runs in a worker thread (boto3 is
    synchronous, and thread-safe for a shared client)."""

    def __init__(self, location: S3Location) -> None:
        import boto3
        from botocore.config import Config

        self.location = location
        self.client: Any = boto3.client(
            "s3", endpoint_url=location.endpoint, region_name=location.region or "us-east-1",
            aws_access_key_id=location.access_key, aws_secret_access_key=location.secret_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"} if location.endpoint else {}))

    def _key(self, key: str) -> str:
        return self.location.prefix + _checked(key)

    async def put(self, key: str, source: Path) -> None:
        if await self.exists(key):
            return
        await asyncio.to_thread(self.client.upload_file, str(source), self.location.bucket,
                                self._key(key))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            answer = await asyncio.to_thread(self.client.get_object,
                                             Bucket=self.location.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise FileNotFoundError(key) from None
            raise
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.location.bucket,
                                    Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.location.bucket,
                                Key=self._key(key))


def default_data_dir(db: str) -> Path:
    """Beside the SQLite database: ``widget.db`` keeps its files in ``widget-data/``; with
    PostgreSQL, ``widget-data/`` in the working folder (several nodes share files only
    through WIDGET_S3_URL)."""
    if "://" in db:
        return Path("widget-data")
    database = Path(db)
    return database.parent / f"{database.stem}-data"


def open_blobs(data_dir: Path, s3_url: S3Location | None) -> BlobStore:
    if s3_url is not None:
        return S3Blobs(s3_url)
    return DiskBlobs(data_dir / "files")
