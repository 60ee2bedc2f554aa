from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from widget_server.clock import FakeClock
from widget_server.errors import Forbidden, Unauthorized
from widget_server.models import Site
from widget_server.visitor_tokens import (
    VisitorTokens,
    anonymous_visitor,
    identity_hash,
    verified_visitor,
)

SITE = Site(id=1, key="site_a", name="A", allowed_origins=("https://a.test",),
            identity_secret="s3cret", reference_prefix="")
OTHER = Site(id=2, key="site_b", name="B", allowed_origins=(), identity_secret="x",
             reference_prefix="")


def test_a_token_round_trips_the_visitor() -> None:
    tokens = VisitorTokens("key-1")
    visitor = anonymous_visitor(SITE, name="Ana")
    assert tokens.read(tokens.issue(visitor, SITE.key), SITE) == visitor


def test_rotation_keeps_old_tokens_valid_while_the_old_key_is_a_fallback() -> None:
    visitor = anonymous_visitor(SITE)
    old_token = VisitorTokens("key-1").issue(visitor, SITE.key)
    rotated = VisitorTokens("key-2", fallbacks=["key-1"])
    assert rotated.read(old_token, SITE).id == visitor.id
    with pytest.raises(Unauthorized):
        VisitorTokens("key-2").read(old_token, SITE)


def test_tampered_foreign_and_expired_tokens_are_refused() -> None:
    tokens = VisitorTokens("key-1")
    token = tokens.issue(anonymous_visitor(SITE), SITE.key)
    with pytest.raises(Unauthorized, match="not valid"):
        tokens.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), SITE)
    with pytest.raises(Unauthorized, match="another site"):
        tokens.read(token, OTHER)
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    short_lived = VisitorTokens("key-1", max_age=60, clock=clock)
    token = short_lived.issue(anonymous_visitor(SITE), SITE.key)
    clock.advance(timedelta(seconds=60))
    assert short_lived.read(token, SITE)  # still valid at exactly max_age
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthorized) as refused:
        short_lived.read(token, SITE)
    assert refused.value.code == "token_expired"


def test_identity_hash_verifies_and_maps_a_user_to_one_visitor() -> None:
    good = identity_hash("s3cret", "user-42")
    first = verified_visitor(SITE, "user-42", good, "Ana", None)
    second = verified_visitor(SITE, "user-42", good.upper(), None, None)
    assert first.verified and first.id == second.id
    with pytest.raises(Forbidden):
        verified_visitor(SITE, "user-43", good, None, None)
