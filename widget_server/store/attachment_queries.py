"""Attachments in the database (docs/api.md#attachments): uploads, the message that claims
them, who may read one, and the sweep of rows nothing needs any more. Mixed into the SQLite
store like the other query mixins; the files themselves are blob_storage's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from widget_server.clock import isoformat
from widget_server.errors import Conflict, Unprocessable
from widget_server.models import (
    AttachmentInfo,
    Message,
    PostResult,
    StoredAttachment,
    TicketChange,
    Uploader,
)
from widget_server.store.console_queries import StoreMixin

UNSENT_LIFETIME = timedelta(hours=24)
R = TypeVar("R", PostResult, TicketChange)


def insert_attachment(conn: sqlite3.Connection, info: AttachmentInfo, uploader: Uploader,
                      storage_key: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO attachments (id, site_id, uploader_visitor_id, uploader_agent_id,"
        " message_id, name, size, content_type, storage_key, created_at)"
        " VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
        (info.id, uploader.site_id, uploader.visitor_id, uploader.agent_id, info.name,
         info.size, info.content_type, storage_key, isoformat(now)))


def with_attachments(conn: sqlite3.Connection, job: Callable[..., R], args: tuple[Any, ...],
                     uploader: Uploader, ids: tuple[str, ...], max_files: int) -> R:
    """Run the message job ``job(conn, *args)``, then have its message claim the uploads
    ``ids``: each must be the uploader's own on the site and not sent yet. Raising rolls
    the whole job back (the writer's savepoint), so a message never goes out half-attached.
    A resend (a duplicate ``client_msg_id``) claims nothing: it has its first attachments."""
    if len(ids) > max_files:
        raise Unprocessable(f"a message may carry at most {max_files} attachments",
                            code="too_many_attachments")
    if len(set(ids)) != len(ids):
        raise Unprocessable("an attachment is listed twice", code="invalid_attachments")
    result = job(conn, *args)
    message: Message
    if isinstance(result, PostResult):
        if result.duplicate:
            return result
        message = result.message
    else:
        message = result.messages[0]
    marks = ", ".join("?" * len(ids))
    found = {row["id"]: row for row in conn.execute(
        "SELECT id, site_id, uploader_visitor_id, uploader_agent_id, message_id, name, size,"
        f" content_type FROM attachments WHERE id IN ({marks})", ids)}
    infos = []
    for attachment_id in ids:
        row = found.get(attachment_id)
        if row is None or row["site_id"] != uploader.site_id or (
                row["uploader_visitor_id"] != uploader.visitor_id
                or row["uploader_agent_id"] != uploader.agent_id):
            raise Unprocessable(f"no upload of yours has the id {attachment_id[:40]!r}",
                                code="attachment_not_found")
        if row["message_id"] is not None:
            raise Conflict(f"the attachment {attachment_id} was sent already",
                           code="attachment_already_sent")
        infos.append(AttachmentInfo(row["id"], row["name"], row["size"], row["content_type"]))
    # the condition again in the write: a message racing this one for the same upload at
    # READ COMMITTED (a new request on PostgreSQL) read it unsent too; one of them claims it
    if conn.execute(f"UPDATE attachments SET message_id = ? WHERE id IN ({marks})"
                    " AND message_id IS NULL", (message.id, *ids)).rowcount != len(ids):
        raise Conflict("an attachment was sent already", code="attachment_already_sent")
    conn.execute("UPDATE messages SET attachments = ? WHERE id = ?",
                 (json.dumps([info.__dict__ for info in infos]), message.id))
    message.attachments = tuple(infos)
    return result


def sweep(conn: sqlite3.Connection, now: datetime) -> list[str]:
    """Delete the rows nobody needs: uploads never sent within ``UNSENT_LIFETIME``, uploads
    of erased visitors, and attachments whose message is gone (retention, erasure). Returns
    the storage keys of the deleted rows (their files go once no row names them)."""
    cutoff = isoformat(now - UNSENT_LIFETIME)
    found = conn.execute(
        "DELETE FROM attachments WHERE (message_id IS NULL AND created_at < ?)"
        " OR (message_id IS NULL AND uploader_visitor_id IN"
        "     (SELECT visitor_id FROM erased_visitors))"
        " OR (message_id IS NOT NULL AND NOT EXISTS"
        "     (SELECT 1 FROM messages m WHERE m.id = attachments.message_id))"
        " RETURNING storage_key", (cutoff,)).fetchall()
    return sorted({row[0] for row in found})


def set_rules(conn: sqlite3.Connection, site_id: int, max_bytes: int, max_files: int,
              types: tuple[str, ...] | None, keep_metadata: bool) -> None:
    conn.execute(
        "UPDATE sites SET attachment_max_bytes = ?, attachment_max_files = ?,"
        " attachment_types = ?, attachment_keep_metadata = ? WHERE id = ?",
        (max_bytes, max_files, ",".join(types) if types else None, int(keep_metadata),
         site_id))


class AttachmentQueries(StoreMixin):
    async def add_attachment(self, info: AttachmentInfo, uploader: Uploader,
                             storage_key: str) -> None:
        await self._write(insert_attachment, info, uploader, storage_key, self._clock.now())

    async def attachment(self, attachment_id: str) -> StoredAttachment | None:
        row = await self._fetchone_now(
            "SELECT a.id, a.site_id, a.uploader_visitor_id, a.uploader_agent_id,"
            " a.message_id, a.name, a.size, a.content_type, a.storage_key,"
            " m.internal AS internal, c.visitor_id AS visitor_id FROM attachments a"
            " LEFT JOIN messages m ON m.id = a.message_id"
            " LEFT JOIN conversations c ON c.id = m.conversation_id WHERE a.id = ?",
            (attachment_id,))
        if row is None:
            return None
        return StoredAttachment(
            info=AttachmentInfo(row["id"], row["name"], row["size"], row["content_type"]),
            site_id=row["site_id"], storage_key=row["storage_key"],
            uploader_visitor_id=row["uploader_visitor_id"],
            uploader_agent_id=row["uploader_agent_id"], message_id=row["message_id"],
            internal=bool(row["internal"]), visitor_id=row["visitor_id"])

    async def sweep_attachments(self, now: datetime) -> list[str]:
        """The sweep (see ``sweep``), then which of its keys no row names any more."""
        keys = await self._write(sweep, now, off_loop=True)
        if not keys:
            return []
        marks = ", ".join("?" * len(keys))
        still = {row[0] for row in await self._fetchall(
            f"SELECT DISTINCT storage_key FROM attachments WHERE storage_key IN ({marks})",
            tuple(keys))}
        return [key for key in keys if key not in still]

    async def key_in_use(self, storage_key: str) -> bool:
        row = await self._fetchone("SELECT 1 FROM attachments WHERE storage_key = ? LIMIT 1",
                                   (storage_key,))
        return row is not None

    async def set_attachment_rules(self, site_id: int, max_bytes: int, max_files: int,
                                   types: tuple[str, ...] | None,
                                   keep_metadata: bool) -> None:
        await self._write(set_rules, site_id, max_bytes, max_files, types, keep_metadata)
