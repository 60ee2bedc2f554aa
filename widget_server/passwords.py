"""Password hashing with scrypt from the standard library (no native dependency to build)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1
# the rule for every password an agent is given (OWASP ASVS 2.1.1 and 2.1.2): long enough to
# resist guessing, no composition rules, and short enough that hashing stays cheap
MIN_PASSWORD, MAX_PASSWORD = 12, 128


class WeakPassword(ValueError):
    """A password that breaks the rule; the message says which part."""


def check_password(password: str) -> str:
    """The password if it follows the rule (the generated ones do), else ``WeakPassword``."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD} characters "
                           f"(this one has {len(password)})")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"a password may have at most {MAX_PASSWORD} characters")
    if not password.isprintable():
        raise WeakPassword("a password may not contain control characters or line breaks")
    if len(set(password)) < 4:
        raise WeakPassword("a password needs more than a few different characters")
    return password


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${N}${R}${P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def new_password() -> str:
    """16 random characters: follows ``check_password``."""
    while True:
        password = secrets.token_urlsafe(12)
        if len(set(password)) >= 4:
            return password
