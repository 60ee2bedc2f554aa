"""Attachments (docs/api.md#attachments): an upload's bytes spooled to a temporary file under
a running cap, its type told from its content, image metadata removed, stored by content
hash; who may read one; signed links for mail; the sweep of what nothing needs any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from widget_server import attachment_content as content
from widget_server.background import BackgroundLoop
from widget_server.blob_storage import BlobStore, default_data_dir, open_blobs
from widget_server.clock import Clock
from widget_server.config import Settings
from widget_server.errors import WidgetError
from widget_server.models import AttachmentInfo, Site, StoredAttachment, Uploader
from widget_server.store import Store
from widget_server.text import one_line

log = logging.getLogger(__name__)
LINK_SALT = "widget-server.attachment-link.v1"
LINK_MAX_AGE = 7 * 24 * 3600  # a link in a mail works for a week
NAME_CHARS = 200
ID = re.compile(r"att_[A-Za-z0-9_-]{24}")
SWEEP_INTERVAL = 3600.0


class AttachmentTooLarge(WidgetError):
    code = "attachment_too_large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"a file may have at most {limit} bytes")
        self.limit = limit


def new_id() -> str:
    return "att_" + secrets.token_urlsafe(18)


def safe_name(raw: str | None) -> str:
    """The file name as shown and offered for download: the last path part, one line,
    no quotes or separators, at most ``NAME_CHARS`` characters; "file" when nothing is left."""
    name = one_line(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\"<>:|?*;]", "_", name).strip(" .")
    return name[:NAME_CHARS] or "file"


class Spool:
    """A temporary file an upload's bytes go into as they arrive: counted against ``cap``
    (AttachmentTooLarge the moment it is passed), hashed, and written in a worker thread.
    At most one network chunk is held in memory."""

    def __init__(self, folder: Path, cap: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(handle, "wb")
        self.cap = cap
        self.size = 0
        self.head = bytearray()
        self._pending = bytearray()
        self.digest = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise AttachmentTooLarge(self.cap)
        if len(self.head) < content.HEAD_BYTES:
            self.head += data[: content.HEAD_BYTES - len(self.head)]
        self._pending += data

    async def flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self.digest.update(data)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._file.close)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(frozen=True)
class Viewer:
    """Who asks for a file: a visitor, or an agent acting on the sites ``site_ids``."""

    visitor_id: str | None = None
    site_ids: frozenset[int] = frozenset()


def may_read(found: StoredAttachment, viewer: Viewer) -> bool:
    """The visitor who uploaded it (until sent) or whose conversation has its public message;
    the agents of its site. Everybody else is told it does not exist."""
    if found.site_id in viewer.site_ids:
        return True
    if viewer.visitor_id is None:
        return False
    if found.message_id is None:
        return found.uploader_visitor_id == viewer.visitor_id
    return not found.internal and found.visitor_id == viewer.visitor_id


class Attachments:
    def __init__(self, store: Store, blobs: BlobStore, data_dir: Path, clock: Clock,
                 secret_keys: list[str]) -> None:
        self.store = store
        self.blobs = blobs
        self.spool_dir = data_dir / "spool"
        self.clock = clock
        self._links = URLSafeTimedSerializer(secret_keys, salt=LINK_SALT)
        self._lock = asyncio.Lock()  # an upload's put and row, a sweep's check and delete

    def spool(self, site: Site) -> Spool:
        return Spool(self.spool_dir, site.attachment_max_bytes)

    async def store_upload(self, spool: Spool, name: str | None, site: Site,
                           uploader: Uploader) -> AttachmentInfo:
        """Check the spooled file and keep it; the spool is gone afterwards either way."""
        cleaned: Path | None = None
        try:
            await spool.close()
            kind = content.detect(bytes(spool.head))
            if not content.allowed(kind, site.attachment_types):
                raise content.AttachmentRefused(f"files of type {kind} cannot be attached")
            path, key, size = spool.path, spool.digest.hexdigest(), spool.size
            if kind in content.IMAGE_TYPES:
                if site.attachment_keep_metadata:
                    readable = await asyncio.to_thread(content.is_readable_image, path, kind)
                else:
                    cleaned = spool.path.with_suffix(".clean")
                    readable = await asyncio.to_thread(content.without_metadata, path,
                                                       cleaned, kind)
                    if readable:
                        path = cleaned
                        key, size = await asyncio.to_thread(_digest, cleaned)
                if not readable:
                    raise content.AttachmentRefused("the image cannot be read",
                                                    code="attachment_invalid_image")
            info = AttachmentInfo(new_id(), safe_name(name), size, kind)
            async with self._lock:
                await self.blobs.put(key, path)
                await self.store.add_attachment(info, uploader, key)
            return info
        finally:
            spool.discard()
            if cleaned is not None:
                with contextlib.suppress(FileNotFoundError):
                    cleaned.unlink()

    def link_token(self, attachment_id: str) -> str:
        return str(self._links.dumps(attachment_id))

    def link_allows(self, token: str, attachment_id: str) -> bool:
        try:
            named = self._links.loads(token, max_age=LINK_MAX_AGE)
        except BadSignature:  # SignatureExpired too
            return False
        return bool(named == attachment_id)

    async def sweep(self) -> int:
        """Delete unsent uploads older than 24 hours and the attachments of purged or erased
        messages, then each file no row names any more. Returns the files deleted."""
        async with self._lock:
            keys = await self.store.sweep_attachments(self.clock.now())
            for key in keys:
                await self.blobs.delete(key)
        return len(keys)


def open_attachments(settings: Settings, store: Store, clock: Clock,
                     secret_keys: list[str]) -> Attachments:
    """The attachments of a server or a CLI command, where the settings keep their files."""
    data_dir = Path(settings.data_dir or default_data_dir(settings.db))
    return Attachments(store, open_blobs(data_dir, settings.s3_url), data_dir, clock,
                       secret_keys)


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as reading:
        while chunk := reading.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class AttachmentSweep(BackgroundLoop):
    """Runs ``Attachments.sweep`` in a server process every ``interval`` seconds."""

    task_name = "attachment-sweep"

    def __init__(self, attachments: Attachments, interval: float = SWEEP_INTERVAL) -> None:
        self.attachments = attachments
        self.interval = interval

    async def _loop(self) -> None:
        while True:
            try:
                deleted = await self.attachments.sweep()
                if deleted:
                    log.info("attachment sweep: %d files deleted", deleted)
            except Exception:
                log.exception("attachment sweep failed; retrying at the next interval")
            await asyncio.sleep(self.interval)
