"""A visitor message returns its ticket from the jobs' memo, by the ticket's id and version
(sqlite_rows.TicketVersions, migration 0009): never a stale one, whoever changed the row; on
both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain, shop
from widget_server.models import Agent, PostResult, Site, Ticket, Visitor
from widget_server.store.base import Store, VisitorPost
from widget_server.store.connection import Connection

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]


def elsewhere(db: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """A write on a connection of our own, as another process (a CLI command) would make."""
    plain(db, sql, params)


class Chat:
    """One visitor's request and its follow-ups; each returns the ticket the store answered."""

    def __init__(self, store: Store, site: Site) -> None:
        self.store = store
        self.visitor = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                               name="Visitor", email=None, verified=False)
        self.conversation_id: str | None = None

    async def say(self, body: str) -> tuple[Ticket, bool]:
        result = await self.store.post_visitor_message(VisitorPost(
            visitor=self.visitor, conversation_id=self.conversation_id,
            client_msg_id=str(uuid.uuid4()), body=body, severity="normal", subject=None),
            datetime.now(UTC))
        self.conversation_id = result.message.conversation_id
        assert result.ticket is not None
        return result.ticket, result.ticket_changed


async def test_every_update_of_a_ticket_gives_it_a_new_version(
        store: Store, db: str) -> None:
    site = await shop(store)
    first, second = Chat(store, site), Chat(store, site)
    await first.say("Help")
    await second.say("Help too")
    versions = "SELECT version FROM tickets ORDER BY id"
    seen = plain(db, versions)
    elsewhere(db, "UPDATE tickets SET subject = 'Renamed' WHERE number = 1")
    renamed = plain(db, versions)
    assert renamed[0] != seen[0] and renamed[1] == seen[1]
    elsewhere(db, "UPDATE tickets SET sla_warned_at = '2026-01-01T00:00:00.000Z'")
    warned = plain(db, versions)
    assert warned[0] not in (seen[0], renamed[0]) and warned[1] != seen[1]
    elsewhere(db, "UPDATE tickets SET version = 70 WHERE number = 2")  # not changed again
    assert plain(db, versions) == [warned[0], (70,)]


async def test_a_version_rolled_back_never_names_another_state_of_the_ticket(
        store: Store, db: str, backend: str) -> None:
    """A follow-up memoises its ticket as changed by an earlier job of its batch; a later job
    fails, the batch runs again job by job, and this time the change fails: the version that
    was rolled back must not come back for a different row."""
    if backend != "sqlite":
        pytest.skip("SQLite's writer batches jobs; on PostgreSQL each job is alone")
    site = await shop(store)
    chat = Chat(store, site)
    await chat.say("Where is my order?")
    await chat.say("Hello?")
    runs = 0

    def rename_once(conn: Connection) -> None:
        nonlocal runs
        runs += 1
        conn.execute("UPDATE tickets SET subject = 'Rolled back'")
        if runs == 2:  # the second run, job by job, fails: the rename is rolled back
            raise RuntimeError("not this time")

    def fail(conn: Connection) -> None:
        raise RuntimeError("this job fails")

    post = VisitorPost(visitor=chat.visitor, conversation_id=chat.conversation_id,
                       client_msg_id=str(uuid.uuid4()), body="Any news?", severity="normal",
                       subject=None)
    renamed, followed, failed = await asyncio.gather(
        store._write(rename_once), store.post_visitor_message(post, datetime.now(UTC)),
        store._write(fail), return_exceptions=True)
    assert runs == 2 and isinstance(renamed, RuntimeError) and isinstance(failed, RuntimeError)
    assert isinstance(followed, PostResult) and followed.ticket is not None
    assert followed.ticket.subject == "Where is my order?"

    elsewhere(db, "UPDATE tickets SET subject = 'Lost parcel'")
    ticket, _ = await chat.say("Still waiting")
    assert ticket.subject == "Lost parcel"


async def test_a_message_returns_its_ticket_as_changed_since_by_anyone(
        store: Store, db: str) -> None:
    site = await shop(store)
    chat = Chat(store, site)
    opened, _ = await chat.say("My order did not arrive")
    built, _ = await chat.say("Any news?")
    again, changed = await chat.say("Hello?")
    assert again is built and again == opened and not changed  # the memo's record

    elsewhere(db, "UPDATE tickets SET subject = 'Lost parcel'")  # another process
    renamed, changed = await chat.say("Still waiting")
    assert (renamed.subject, renamed.number, changed) == ("Lost parcel", opened.number, False)

    # the reference is built from the site's prefix, a column of another table
    elsewhere(db, "UPDATE sites SET reference_prefix = 'SHOP-'")
    prefixed, _ = await chat.say("Anyone?")
    assert prefixed.reference == f"#SHOP-{opened.number}"
    assert prefixed.subject == "Lost parcel"


async def test_a_message_that_reopens_its_ticket_returns_the_reopened_ticket(
        store: Store, agent: Agent, db: str) -> None:
    site = await shop(store)
    chat = Chat(store, site)
    opened, _ = await chat.say("Broken login")
    await store.post_agent_message(site.id, opened.number, agent, "Fixed, try again", False,
                                   datetime.now(UTC))
    elsewhere(db, "UPDATE tickets SET status = 'solved'")
    reopened, changed = await chat.say("Still broken")
    assert (reopened.status, changed) == ("open", True)
    same, changed = await chat.say("Really")
    assert (same.status, same.subject, changed) == ("open", opened.subject, False)
    assert plain(db, "SELECT status FROM tickets") == [("open",)]


async def test_the_next_message_returns_the_record_an_agent_reply_built(
        store: Store, agent: Agent, db: str) -> None:
    """A reply changes its ticket (first response, status): the job that made the change
    keeps the record it built, and the visitor's next message finds that one by its version
    instead of reading the whole row and building it again."""
    site = await shop(store)
    chat = Chat(store, site)
    opened, _ = await chat.say("Broken login")
    reply = await store.post_agent_message(site.id, opened.number, agent, "Try again", False,
                                           datetime.now(UTC))
    assert reply.ticket.first_response_at is not None and opened.first_response_at is None
    followed, changed = await chat.say("Still broken")
    assert followed is reply.ticket and not changed

    # a change the writer did not make is a new version: read and built again
    elsewhere(db, "UPDATE tickets SET subject = 'Login loop'")
    renamed, _ = await chat.say("Hello?")
    assert renamed is not reply.ticket and renamed.subject == "Login loop"
    assert renamed.first_response_at == reply.ticket.first_response_at


@pytest.fixture
async def agent(store: Store) -> Agent:
    created, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    return created
