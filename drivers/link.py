"""Byte links: an async stream over a serial port (any pyserial URL) or TCP.

Serial follows Moonraker's ``async_serial``: pyserial opens the port with
``timeout=0``, the fd is made non-blocking and fed to the event loop with
``add_reader``, so no thread is needed. A link that drops (the tty vanished, EIO,
EOF) fails every pending read with :class:`DeviceOffline`; reopening is the
driver's job. Drivers see only the :class:`ByteLink` protocol, so a simulator, a
pty, a USB adapter and ``tcp://printer:9100`` are interchangeable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Protocol

import serial

from drivers.errors import DeviceOffline, DeviceTimeout


class ByteLink(Protocol):
    name: str

    @property
    def is_open(self) -> bool: ...

    async def write(self, data: bytes) -> None: ...

    async def read(self, n: int, timeout: float) -> bytes: ...

    async def read_exactly(self, n: int, timeout: float) -> bytes: ...

    def discard_input(self) -> bytes: ...

    async def close(self) -> None: ...


class _BufferedReader:
    """Shared receive buffer with waiters, used by both link kinds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._buf = bytearray()
        self._event = asyncio.Event()
        self._closed_reason: str | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._event.set()

    def fail(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        self._event.set()

    @property
    def failed(self) -> bool:
        return self._closed_reason is not None

    async def _wait(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise DeviceTimeout(self.name, "no answer in time")
        self._event.clear()
        try:
            async with asyncio.timeout(remaining):
                await self._event.wait()
        except TimeoutError as exc:
            raise DeviceTimeout(self.name, "no answer in time") from exc

    async def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, waiting until at least one is there."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._buf:
            if self._closed_reason is not None:
                raise DeviceOffline(self.name, self._closed_reason)
            await self._wait(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._buf) < n:
            if self._closed_reason is not None:
                raise DeviceOffline(self.name, self._closed_reason)
            await self._wait(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def discard(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


class SerialLink:
    """A serial port (device path, pty, or any pyserial URL) as an async stream."""

    def __init__(self, port: serial.SerialBase, name: str) -> None:
        self.name = name
        self._port = port
        self._reader = _BufferedReader(name)
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = None
        try:
            self._fd = port.fileno()
        except (AttributeError, OSError, NotImplementedError):
            self._fd = None
        if self._fd is None:
            raise DeviceOffline(name, "port has no file descriptor")
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._on_readable)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baudrate: int = 9600,
        parity: str = "N",
        bytesize: int = 8,
        stopbits: float = 1,
        name: str | None = None,
    ) -> SerialLink:
        try:
            port = serial.serial_for_url(
                url,
                baudrate=baudrate,
                parity=parity,
                bytesize=bytesize,
                stopbits=stopbits,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceOffline(name or url, f"cannot open {url}: {exc}") from exc
        return cls(port, name or url)

    @property
    def is_open(self) -> bool:
        return self._fd is not None and not self._reader.failed

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO when the other side of a pty or the USB adapter goes away
            self._drop(f"read failed: {exc.strerror or exc}")
            return
        if not data:
            self._drop("port closed")
            return
        self._reader.feed(data)

    def _drop(self, reason: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._fd)
        self._reader.fail(reason)

    async def write(self, data: bytes) -> None:
        if self._fd is None or self._reader.failed:
            raise DeviceOffline(self.name, "link is closed")
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._fd, view)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._drop(f"write failed: {exc.strerror or exc}")
                raise DeviceOffline(self.name, f"write failed: {exc.strerror or exc}") from exc
            view = view[sent:]
            if view:
                await self._writable()

    async def _writable(self) -> None:
        assert self._fd is not None
        fut: asyncio.Future[None] = self._loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        self._loop.add_writer(self._fd, ready)
        try:
            async with asyncio.timeout(5.0):
                await fut
        except TimeoutError as exc:
            raise DeviceTimeout(self.name, "output stalled (flow control or device busy)") from exc
        finally:
            self._loop.remove_writer(self._fd)

    async def read(self, n: int, timeout: float) -> bytes:
        return await self._reader.read(n, timeout)

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        return await self._reader.read_exactly(n, timeout)

    def discard_input(self) -> bytes:
        return self._reader.discard()

    async def close(self) -> None:
        if self._fd is None:
            return
        self._drop("closed")
        self._fd = None
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()


class TcpLink:
    """A TCP byte stream (network printers on port 9100, serial servers)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        self.name = name
        self._writer = writer
        self._buffer = _BufferedReader(name)
        self._pump = asyncio.create_task(self._run(reader), name=f"drivers.link.{name}.pump")

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 3.0, name: str | None = None) -> TcpLink:
        label = name or f"{host}:{port}"
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            raise DeviceOffline(label, f"cannot connect to {host}:{port}: {exc}") from exc
        return cls(reader, writer, label)

    async def _run(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self._buffer.fail("connection closed by peer")
                    return
                self._buffer.feed(data)
        except OSError as exc:
            self._buffer.fail(f"connection lost: {exc}")

    @property
    def is_open(self) -> bool:
        return not self._buffer.failed

    async def write(self, data: bytes) -> None:
        if self._buffer.failed:
            raise DeviceOffline(self.name, "link is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self._buffer.fail(f"write failed: {exc}")
            raise DeviceOffline(self.name, f"write failed: {exc}") from exc

    async def read(self, n: int, timeout: float) -> bytes:
        return await self._buffer.read(n, timeout)

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        return await self._buffer.read_exactly(n, timeout)

    def discard_input(self) -> bytes:
        return self._buffer.discard()

    async def close(self) -> None:
        self._buffer.fail("closed")
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def open_link(url: str, *, baudrate: int = 9600, parity: str = "N", name: str | None = None) -> ByteLink:
    """Open ``tcp://host:port`` as TCP, anything else as a pyserial URL or device path."""
    if url.startswith("tcp://"):
        host, _, port = url[len("tcp://") :].rpartition(":")
        return await TcpLink.open(host, int(port), name=name)
    return await SerialLink.open(url, baudrate=baudrate, parity=parity, name=name)
