"""A minimal HTTP/1.1 keep-alive client for the load generator's hot loops.

httpx cost the driving process about 2 ms of CPU per request, on the same two cores as the
server it measures: at 100 agent replies per second that was a fifth of a core taken from
the server. This writes the request bytes itself and reads the status line, the headers
and a Content-Length body; that is all the REST API answers with. Not a general client.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class KeepAlivePool:
    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.size = host, port, size
        self._head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self._opened = 0

    async def post_json(self, path: str, payload: Any) -> tuple[int, bytes]:
        return await self.request("POST", path, json.dumps(payload).encode(),
                                  {"Content-Type": "application/json"})

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request on a pooled connection: (status, body). ``path`` is sent as given,
        query included."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
        request = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"{self._head}{extra}{length}\r\n").encode() + body
        reader, writer = await self._take()
        try:
            writer.write(request)
            status, answer, keep = await _read_response(reader)
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        if keep:
            self._idle.put_nowait((reader, writer))
        else:
            writer.close()
            self._opened -= 1
        return status, answer

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()

    async def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle.empty() and self._opened < self.size:
            self._opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except BaseException:
                self._opened -= 1
                raise
        return await self._idle.get()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise RuntimeError(f"no Content-Length in the answer: {lines[0]}")
    body = await reader.readexactly(int(headers["content-length"]))
    return status, body, headers.get("connection", "").lower() != "close"
