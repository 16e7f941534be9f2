"""The small contract every driver keeps, so the daemon can treat them alike.

Drivers import nothing from ``hallctl``: the daemon wraps each one and turns its
health and messages into bus events. Every driver satisfies :class:`DeviceDriver`:
the daemon runs ``run()`` in a task and reads ``health()``, ``counters`` and
``connected``. The drivers here get that surface from
:class:`drivers.reconnect.SupervisedDriver`; some also offer ``async with driver:``
(:class:`AsyncContextDriver`), which runs ``run()`` in the background.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar, Literal, NamedTuple, Protocol, Self

# ``unknown``: connected, but the device cannot tell its state (an ESC/POS printer with
# status queries off: ``status = "none"``), so it is neither known good nor known bad.
HealthState = Literal["ok", "degraded", "offline", "error", "unknown"]


class Health(NamedTuple):
    state: HealthState
    detail: str = ""


HealthCallback = Callable[[Health], None]


class DeviceDriver(Protocol):
    """What the daemon needs from every device driver, whatever its kind.

    ``run()`` keeps the device connected until it is cancelled and never raises a
    device problem: an absent or failing device shows in ``health()`` (and
    ``counters``) while ``run()`` keeps retrying. ``connected`` is set while a link
    to the device is up.
    """

    kind: ClassVar[str]
    name: str

    async def run(self) -> None: ...

    def health(self) -> Health: ...

    @property
    def counters(self) -> ErrorCounters: ...

    @property
    def connected(self) -> asyncio.Event: ...


@dataclasses.dataclass
class ErrorCounters:
    """Counted, not raised: garbage and bad frames are facts to report, not crashes."""

    bad_frames: int = 0
    timeouts: int = 0
    garbage_bytes: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str) -> int:
        """``counters["reconnects"]``: the printer's counters used to be a plain dict."""
        return self.as_dict()[key]


class HealthTracker:
    """Holds a driver's current health and tells a listener only about changes.

    Keeps the last few raw frames for debugging (pymodbus's habit); drivers must
    not record frames that carry ID-card data.
    """

    def __init__(self, on_change: HealthCallback | None = None, keep_frames: int = 8) -> None:
        self._health = Health("offline", "not opened")
        self._on_change = on_change
        self.counters = ErrorCounters()
        self.frames: collections.deque[str] = collections.deque(maxlen=keep_frames)

    @property
    def current(self) -> Health:
        return self._health

    def set(self, state: HealthState, detail: str = "") -> None:
        new = Health(state, detail)
        if new != self._health:
            self._health = new
            if self._on_change is not None:
                self._on_change(new)

    def record_frame(self, direction: str, data: bytes) -> None:
        self.frames.append(f"{direction} {data[:64].hex(' ')}")


class AsyncContextDriver:
    """Mixin giving ``async with driver:`` in terms of ``open``/``close``."""

    async def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
