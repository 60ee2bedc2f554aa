"""An inbound mail, parsed: who sent it to whom, what it answers, and its new text only.

The stdlib ``email`` package (``policy.default``) decodes charsets, transfer encodings and
MIME parts; an HTML-only mail becomes text with ``inscriptis`` (its layout kept; Apache-2.0,
where html2text is GPL); the quoted earlier mail and the signature are cut with
``mail-parser-reply``. A delivery status notification (RFC 3464)
yields the addresses it reports as failed instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "ja"]
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_BULK = {"bulk", "list", "junk"}
MAX_FILES = 20  # a site takes at most its own number per message; the rest is noted


@dataclass(frozen=True)
class InboundMail:
    sender: str  # the From address, lowercase ('' when there is none)
    sender_name: str | None
    recipients: tuple[str, ...]  # To, Cc, Delivered-To and X-Original-To, lowercase
    subject: str
    message_id: str | None
    refers_to: tuple[str, ...]  # In-Reply-To, then References, newest first
    text: str  # the new text: no quote, no signature
    automatic: bool  # Auto-Submitted other than "no", or Precedence bulk/list/junk
    failed: tuple[str, ...] = ()  # a DSN: the recipients it reports as failed
    reason: str = ""  # a DSN: their status and diagnostic
    files: tuple[MailFile, ...] = ()  # its attachments, checked like uploads when stored


@dataclass(frozen=True)
class MailFile:
    name: str | None
    data: bytes


def parse_mail(raw: bytes) -> InboundMail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    name, sender = parseaddr(str(message.get("From", "")))
    recipients = [address.lower() for _, address in getaddresses(
        [str(value) for header in ("To", "Cc", "Delivered-To", "X-Original-To")
         for value in message.get_all(header, [])]) if "@" in address]
    refers = _MESSAGE_ID.findall(str(message.get("In-Reply-To", "")))
    refers += reversed(_MESSAGE_ID.findall(str(message.get("References", ""))))
    auto = str(message.get("Auto-Submitted", "no")).split(";")[0].strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    failed, reason = delivery_failures(message)
    message_id = _MESSAGE_ID.findall(str(message.get("Message-ID", "")))
    return InboundMail(
        sender=sender.lower(), sender_name=name.strip() or None,
        recipients=tuple(dict.fromkeys(recipients)),
        subject=" ".join(str(message.get("Subject", "")).split()),
        message_id=message_id[0] if message_id else None,
        refers_to=tuple(dict.fromkeys(refers)),
        text="" if failed else new_text(message),
        automatic=auto != "no" or precedence in _BULK or bool(failed),
        failed=failed, reason=reason, files=() if failed else mail_files(message))


def mail_files(message: EmailMessage) -> tuple[MailFile, ...]:
    """The mail's attachments (the parts that are not its text), at most ``MAX_FILES``."""
    found: list[MailFile] = []
    for part in message.iter_attachments():
        if len(found) >= MAX_FILES:
            break
        if part.get_content_maintype() in {"multipart", "message"}:
            continue  # a forwarded mail or a nested alternative: not a file
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            found.append(MailFile(part.get_filename(), data))
    return tuple(found)


def body_text(message: EmailMessage) -> str:
    """The plain-text part, else the HTML part as text; '' when there is neither."""
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        return _content(part)
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return ""
    try:
        return str(get_text(_content(part)))
    except Exception:  # markup lxml cannot read at all: no text to keep
        return ""


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # an unknown charset: the bytes as Latin-1 say most
        payload = part.get_payload(decode=True)
        return payload.decode("latin-1") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def new_text(message: EmailMessage) -> str:
    """What the answer adds: the first reply of the thread, without quote or signature."""
    text = body_text(message).replace("\r\n", "\n").strip()
    if not text:
        return ""
    replies = EmailReplyParser(languages=LANGUAGES).read(text=text).replies
    body = str(replies[0].body).strip() if replies else ""
    return body or text


def delivery_failures(message: EmailMessage) -> tuple[tuple[str, ...], str]:
    """A ``multipart/report; report-type=delivery-status``: the recipients whose Action is
    ``failed``, and their status and diagnostic."""
    if message.get_content_type() != "multipart/report" or \
            message.get_param("report-type", "") != "delivery-status":
        return (), ""
    failed: list[str] = []
    reasons: list[str] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in part.get_payload() or []:
            if not isinstance(block, Message):
                continue
            if str(block.get("Action", "")).strip().lower() != "failed":
                continue
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient")
                            or "")
            address = recipient.rpartition(";")[2].strip().strip("<>").lower()
            if "@" in address:
                failed.append(address)
                reasons.append(" ".join(f"{block.get('Status', '')} "
                                        f"{block.get('Diagnostic-Code', '')}".split()))
    return tuple(dict.fromkeys(failed)), "; ".join(dict.fromkeys(reasons))[:500]
