"""systemd's notify protocol, without a dependency: ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``.

A datagram to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).
Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op. The :class:`Watchdog`
pings only while the event loop runs and the store's writer thread answers a no-op
round trip within half the interval; a stuck loop or writer stops the pings and
systemd (``WatchdogSec=``) restarts the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):
        return "\0" + addr[1:]
    return addr


def notify(message: str) -> bool:
    """Send one state line (``READY=1``...); False when not under systemd or the send failed."""
    addr = _address()
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), addr)
    except OSError as exc:
        log.warning("systemd notify %s failed: %s", message.split("=", 1)[0], exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """``$WATCHDOG_USEC`` in seconds, if the watchdog is on for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


class Watchdog:
    """Pings ``WATCHDOG=1`` every interval/4 while ``probe()`` (the writer round trip) succeeds."""

    def __init__(self, probe: Callable[[], Awaitable[None]], interval: float) -> None:
        self.probe = probe
        self.interval = interval
        self.pings = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hallctl.watchdog")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        period = self.interval / 4
        probe: asyncio.Future[None] | None = None
        while True:
            # At most one probe outstanding: a stuck writer does not pile up no-ops behind it.
            if probe is None or probe.done():
                probe = asyncio.ensure_future(self.probe())
            try:
                await asyncio.wait_for(asyncio.shield(probe), timeout=self.interval / 2)
            except Exception as exc:  # noqa: BLE001 - any failure means: do not ping
                self.failures += 1
                log.error("watchdog: store writer did not answer (%s); not pinging systemd", type(exc).__name__)
            else:
                if notify("WATCHDOG=1"):
                    self.pings += 1
            await asyncio.sleep(period)
