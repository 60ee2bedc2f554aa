"""What a write job checks again about the credential it acts for, inside its transaction:
the visitor was not erased since the credential was issued, the site's identity mode still
lets the visitor write, the agent to assign still works on the site.

The web layer checks the same before it writes; these checks close the gap between that
read and the write, and cover the credentials that stay open (a widget socket).
"""

from __future__ import annotations

from widget_server.clock import isoformat
from widget_server.errors import Forbidden, InvalidAssignee, Unauthorized
from widget_server.models import Visitor
from widget_server.store.connection import Connection


def check_not_erased(conn: Connection, visitor: Visitor) -> None:
    """A credential issued before the visitor's erasure no longer speaks for them, so an
    old token cannot bring an erased name back (docs/privacy.md)."""
    if visitor.since is not None and conn.execute(
            "SELECT 1 FROM erased_visitors WHERE visitor_id = ? AND erased_at >= ?",
            (visitor.id, isoformat(visitor.since))).fetchone() is not None:
        raise Unauthorized("the visitor token is no longer valid", code="invalid_token")


def check_identity(mode: str | None, visitor: Visitor) -> None:
    """A site in ``required`` identity mode takes messages only from verified visitors, at
    the moment of writing: a widget socket, token or Help Form link from before the switch
    gets no further (docs/identity.md)."""
    if mode == "required" and not visitor.verified:
        raise Forbidden("this site only talks to signed-in users of its product: identify "
                        "the visitor with a valid user hash", code="identity_required")


def check_assignee(conn: Connection, agent_id: int, site_id: int) -> None:
    """Only an active agent of the ticket's site (admins work on every site); one answer
    for every refusal, so it never tells whether the agent exists elsewhere."""
    if conn.execute(
            "SELECT 1 FROM agents a WHERE a.id = ? AND a.active = 1 AND (a.role = 'admin'"
            " OR EXISTS (SELECT 1 FROM agent_sites m WHERE m.agent_id = a.id"
            " AND m.site_id = ?))", (agent_id, site_id)).fetchone() is None:
        raise InvalidAssignee()
