"""A loop that runs beside the server from start() until stop(): the SLA scheduler and the
retention job are both one."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    task_name = "background"
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        raise NotImplementedError
