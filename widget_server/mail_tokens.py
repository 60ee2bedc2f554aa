"""Reply addresses: ``r+<conversation>.<signature>@WIDGET_MAIL_REPLY_DOMAIN``.

The signature is an HMAC-SHA256 of the conversation id under the server secret (truncated to
80 bits, lowercase hex, so an MTA that folds the local part's case keeps it valid). Whoever
holds a reply address may answer that one conversation; nobody can make up another. A forged
or mangled address is refused by ``parse_reply_address`` without reading the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

SALT = b"widget-server.mail-reply.v1:"
SIGNATURE_HEX = 20
_LOCAL = re.compile(r"^r\+(cv_[0-9a-f]{1,40})\.([0-9a-f]{" + str(SIGNATURE_HEX) + "})$")


def _signature(key: str, conversation_id: str) -> str:
    mac = hmac.new(key.encode(), SALT + conversation_id.encode(), hashlib.sha256)
    return mac.hexdigest()[:SIGNATURE_HEX]


def reply_address(secret_key: str, conversation_id: str, domain: str) -> str:
    return f"r+{conversation_id}.{_signature(secret_key, conversation_id)}@{domain}"


def parse_reply_address(address: str, keys: Sequence[str], domain: str) -> str | None:
    """The conversation id a genuine reply address names; None for anything else. ``keys``
    are the secret and its fallbacks, any of which may have signed it."""
    local, at, host = address.strip().strip("<>").lower().rpartition("@")
    if not at or host != domain.lower():
        return None
    match = _LOCAL.match(local)
    if match is None:
        return None
    conversation_id, signature = match.groups()
    for key in keys:
        if hmac.compare_digest(signature, _signature(key, conversation_id)):
            return conversation_id
    return None
