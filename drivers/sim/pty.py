"""A pluggable pseudo-terminal: the simulator holds the master end, the driver
opens a stable path (a symlink to the slave) exactly like a real ``/dev/ttyUSB0``.

``unplug()`` closes the pty and removes the symlink, as pulling a USB adapter
removes its tty; ``plug()`` makes a new pty behind the same path. That is the
unplug/replug fault the drivers must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Self


class PtyPort:
    def __init__(self, path: str) -> None:
        self.path = path
        self.master: int | None = None
        self._slave: int | None = None
        self._on_data: Callable[[bytes], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self, on_data: Callable[[bytes], None]) -> None:
        """Create the pty and start delivering bytes written by the driver to ``on_data``."""
        if self.master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.symlink(os.ttyname(slave), self.path)
        self.master, self._slave = master, slave
        self._on_data = on_data
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            # EIO: no process holds the slave open right now; wait for the next open.
            return
        if data and self._on_data is not None:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        """Send bytes to the driver. Silently drops them while unplugged, as a cable would."""
        if self.master is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                continue
            except OSError:
                return
            view = view[n:]

    def unplug(self) -> None:
        if self.master is None:
            return
        assert self._loop is not None
        self._loop.remove_reader(self.master)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (self.master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = None

    def close(self) -> None:
        self.unplug()


class PtySim:
    """Plug, unplug and ``async with`` for a simulator that answers on one :class:`PtyPort`.

    Subclasses set ``self.port`` and implement ``_on_data``; ``_reset`` drops any
    half-received frame when the device is plugged in again, as a real power-up would.
    """

    port: PtyPort

    def _reset(self) -> None:
        """Forget partial input; called on every plug."""

    def _on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def plug(self) -> None:
        self._reset()
        self.port.plug(self._on_data)

    def start(self) -> None:
        self.plug()

    def unplug(self) -> None:
        self.port.unplug()

    def close(self) -> None:
        self.port.close()

    async def __aenter__(self) -> Self:
        self.plug()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
