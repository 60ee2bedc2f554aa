"""Agents' availability (online or away), set by each agent and shown to the others.

A mixin of the SQLite store like ConsoleQueries; its one write job is here too, small enough
to sit beside the reads. An agent without a row is online (migration 0018).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from widget_server.clock import isoformat
from widget_server.store.console_queries import StoreMixin

PRESENCE_STATES = ("online", "away")


def set_presence_job(conn: sqlite3.Connection, agent_id: int, status: str,
                     now: datetime) -> None:
    conn.execute(
        "INSERT INTO agent_presence (agent_id, status, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (agent_id) DO UPDATE SET status = excluded.status,"
        " updated_at = excluded.updated_at", (agent_id, status, isoformat(now)))


class PresenceQueries(StoreMixin):
    async def set_presence(self, agent_id: int, status: str) -> None:
        if status not in PRESENCE_STATES:
            raise ValueError(f"presence must be one of {', '.join(PRESENCE_STATES)}")
        await self._write(set_presence_job, agent_id, status, self._clock.now())

    async def presence_of(self, agent_ids: list[int]) -> dict[int, str]:
        """Each agent's availability; agents who never set one are online."""
        if not agent_ids:
            return {}
        marks = ", ".join("?" * len(agent_ids))
        found = await self._fetchall(
            f"SELECT agent_id, status FROM agent_presence WHERE agent_id IN ({marks})",
            tuple(agent_ids))
        stored = {int(row[0]): str(row[1]) for row in found}
        return {agent_id: stored.get(agent_id, "online") for agent_id in agent_ids}
