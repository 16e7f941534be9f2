"""Same-key requests wait for each other: one lock per ``Idempotency-Key`` while it is in use."""

from __future__ import annotations

import asyncio
from types import TracebackType


class KeyLock:
    """``async with KeyLock(locks, key)``: hold the key's lock; the last holder forgets it.

    A client that retried before the first answer arrived waits here, so the second request
    finds the first's stored answer instead of acting twice. A plain class rather than a
    ``contextlib.asynccontextmanager``: it is entered on every issue with a key, and the
    generator-based helper was 2 % of the event loop in issue 12's profile.
    """

    __slots__ = ("_key", "_lock", "_locks")

    def __init__(self, locks: dict[str, asyncio.Lock], key: str) -> None:
        self._locks = locks
        self._key = key
        self._lock = locks.setdefault(key, asyncio.Lock())

    async def __aenter__(self) -> None:
        try:
            await self._lock.acquire()
        except BaseException:
            self._forget()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()
        self._forget()

    def _forget(self) -> None:
        lock = self._lock
        if not lock.locked() and self._locks.get(self._key) is lock:
            del self._locks[self._key]
