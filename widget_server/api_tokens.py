"""REST API tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "wst_"


def new_api_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
