"""Cheap raw clients of the event streams, for the hostile tests: asyncio sockets, no HTTP library.

An SSE body is chunked; every event is one chunk, so an event's text is never split
by chunk framing and can be found in the raw bytes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx

READY = b"event: ready\n"


class SseClient:
    """One ``GET /api/v1/events`` connection read by hand (``Connection: close``: the end is EOF)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.status = 0
        self.eof = False

    @classmethod
    async def open(cls, port: int, token: str, *, rcvbuf: int | None = None) -> SseClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        # A small reader limit: a client that does not read stops the transport soon (like a stuck screen).
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        writer.write(
            f"GET /api/v1/events?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def head(self, timeout: float = 10) -> int:
        """Read the status line and headers; the status code."""
        async with asyncio.timeout(timeout):
            raw = await self.reader.readuntil(b"\r\n\r\n")
        self.status = int(raw.split(b" ", 2)[1])
        return self.status

    async def body(self, timeout: float = 10) -> bytes:
        """The whole (error) body, to EOF."""
        async with asyncio.timeout(timeout):
            return await self.reader.read()

    async def until(self, needle: bytes, timeout: float = 10) -> bool:
        """Read until ``needle`` has arrived (True) or EOF (False); TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while needle not in self.buf:
                chunk = await self.reader.read(65536)
                if not chunk:
                    self.eof = True
                    return False
                self.buf += chunk
        return True

    async def to_eof(self, timeout: float) -> bool:
        """Read everything until the server closes; False if it is still open after ``timeout``."""
        try:
            await self.until(b"\x00never\x00", timeout)
        except TimeoutError:
            return False
        return self.eof

    async def ready(self, timeout: float = 10) -> None:
        status = await self.head(timeout)
        assert status == 200, status
        assert await self.until(READY, timeout), "stream ended before ready"

    def close(self) -> None:
        self.writer.transport.abort()


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    """The daemon's health with details: the client carries an admin token in ``X-Test-Admin``."""
    resp = await client.get("/api/v1/health", headers={"Authorization": f"Bearer {client.headers['X-Test-Admin']}"})
    body: dict[str, Any] = resp.json()
    return body


async def poll(fn: Any, deadline_s: float, interval: float = 0.05) -> Any:
    """Call ``await fn()`` until it returns something truthy or ``deadline_s`` passes (then the last value)."""
    end = time.monotonic() + deadline_s
    value = await fn()
    while not value and time.monotonic() < end:
        await asyncio.sleep(interval)  # polling an external process for an observable condition
        value = await fn()
    return value


def problem_code(raw: bytes) -> str:
    """The ``code`` of a problem+json body read raw (possibly chunked: take the JSON object)."""
    start, end = raw.index(b"{"), raw.rindex(b"}")
    code: str = json.loads(raw[start : end + 1])["code"]
    return code
