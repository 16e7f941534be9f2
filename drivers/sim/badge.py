"""A contactless staff badge for pcscd's virtual reader (vsmartcard ``vpcd``).

vpcd turns a TCP connection into a card: connecting is putting the badge on the
reader, disconnecting is taking it away, so tests and the demo get genuine
PC/SC insert and remove events from the real pcscd without hardware. Debian's
``vicc`` is broken on our image, and a card we write ourselves can also be made
to misbehave (a wrong status word) on purpose.

Wire format, both directions: a 2-byte big-endian length, then that many bytes.
A 1-byte message from vpcd is a control code; anything longer is a command APDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # "Virtual PCD 00 00"; 35964 is "Virtual PCD 00 01"

# PC/SC part 3 ATR of a contactless storage card, as real badge readers synthesise it.
DEFAULT_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

GET_UID = bytes.fromhex("FFCA000000")
SW_OK = b"\x90\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"

_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4


class VirtualBadge:
    """One badge; ``uid_sw`` other than ``90 00`` makes it refuse the get-UID command."""

    def __init__(
        self,
        uid: bytes,
        port: int = VPCD_PORT,
        *,
        host: str = VPCD_HOST,
        atr: bytes = DEFAULT_ATR,
        uid_sw: bytes = SW_OK,
    ) -> None:
        self.uid = uid
        self.port = port
        self.host = host
        self.atr = atr
        self.uid_sw = uid_sw
        self.apdus: list[bytes] = []  # every command APDU received, for assertions
        self.apdu_seen = asyncio.Event()  # set at each APDU, so a test can await the reader
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def inserted(self) -> bool:
        return self._writer is not None

    async def insert(self, timeout: float = 3.0) -> None:
        """Put the badge on the reader; raises ``OSError`` when vpcd (pcscd) is not there."""
        if self._writer is not None:
            return
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        self._task = asyncio.create_task(self._serve(reader, writer), name=f"drivers.sim.badge.{self.port}")

    async def remove(self) -> None:
        """Take the badge away: vpcd sees the connection close and reports the card gone."""
        writer, task = self._writer, self._task
        self._writer = self._task = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def respond(self, apdu: bytes) -> bytes:
        if apdu == GET_UID:
            return self.uid + self.uid_sw if self.uid_sw == SW_OK else self.uid_sw
        return SW_INS_NOT_SUPPORTED

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack(">H", await reader.readexactly(2))
                msg = await reader.readexactly(length)
                if length == 1:
                    if msg[0] == _GET_ATR:
                        await self._send(writer, self.atr)
                    # power on/off and reset need no answer
                    continue
                self.apdus.append(msg)
                self.apdu_seen.set()
                await self._send(writer, self.respond(msg))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            log.debug("virtual badge on port %d: vpcd closed the connection: %s", self.port, exc)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(struct.pack(">H", len(data)) + data)
        await writer.drain()
