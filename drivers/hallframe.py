"""hallctl's own RS-485 frame, shared by LED window displays and evaluation pads.

Pure codec (no I/O, no timers), so the driver and the simulator use the very
same code from opposite ends and the tests can pin it with literal bytes::

    offset 0  2  sync  AA 55
           2  1  address (1-254 one device, 00 broadcast, FF reserved)
           3  1  command (a reply is command | 80)
           4  2  payload length N, little endian
           6  N  payload
           6+N 2 CRC-16/MODBUS over bytes 2 .. 5+N, low byte first

Receiving hunts for ``AA 55``. A header whose length exceeds the cap, or a frame
whose CRC does not match, is dropped and hunting restarts one byte after its
sync, so a real frame hidden inside a corrupt one is still found. Nothing here
raises on received bytes: a noisy RS-485 line is normal, so bad input becomes
counters for the driver's health report.

There is no transaction id in this frame. Because the bus master keeps one
request in flight and matches replies by address and command, a reply that
arrives after its request timed out can only be mistaken for the answer to an
identical retry, which is harmless.
"""

from __future__ import annotations

import dataclasses
import struct

from drivers.crc import crc16_modbus

SYNC = b"\xaa\x55"
BROADCAST = 0x00
RESERVED_ADDRESS = 0xFF
REPLY_FLAG = 0x80
HEADER_SIZE = 6
CRC_SIZE = 2
MAX_PAYLOAD = 256
"""Default length cap: real payloads are under 100 bytes; a larger length is line noise,
and waiting for 64 KiB of it would stall the decoder for a minute at 9600 baud."""

# Reply status bytes (payload byte 0 of a ``cmd | 80`` frame).
STATUS_OK = 0x00
STATUS_BUSY = 0x01
STATUS_BAD_COMMAND = 0x02
STATUS_TEXT_TOO_LONG = 0x03
STATUS_UNSUPPORTED_CHAR = 0x04

STATUS_REASONS: dict[int, str] = {
    STATUS_OK: "ok",
    STATUS_BUSY: "busy",
    STATUS_BAD_COMMAND: "bad_command",
    STATUS_TEXT_TOO_LONG: "text_too_long",
    STATUS_UNSUPPORTED_CHAR: "unsupported_char",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    address: int
    command: int
    payload: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.command & REPLY_FLAG)

    @property
    def request_command(self) -> int:
        """The command a reply answers (a request returns its own command)."""
        return self.command & ~REPLY_FLAG & 0xFF

    @property
    def status(self) -> int | None:
        """Reply status byte, or ``None`` for a request or an empty reply."""
        if not self.is_reply or not self.payload:
            return None
        return self.payload[0]

    def encode(self) -> bytes:
        return encode(self.address, self.command, self.payload)


def encode(address: int, command: int, payload: bytes = b"", *, max_payload: int = MAX_PAYLOAD) -> bytes:
    """Build one frame; refuses values that would not fit so bad input fails before the wire."""
    if not 0 <= address <= 0xFF:
        raise ValueError(f"address {address} out of range 0..255")
    if not 0 <= command <= 0xFF:
        raise ValueError(f"command {command} out of range 0..255")
    if len(payload) > max_payload:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {max_payload}-byte cap")
    body = struct.pack("<BBH", address, command, len(payload)) + payload
    return SYNC + body + struct.pack("<H", crc16_modbus(body))


MAX_TICKET_LEN = 16


def ticket_bytes(ticket: str) -> bytes:
    """Tickets travel as ASCII followed by ``00``, so only printable ASCII is allowed."""
    if not 1 <= len(ticket) <= MAX_TICKET_LEN or not all("!" <= ch <= "~" for ch in ticket):
        raise ValueError(f"ticket must be 1-{MAX_TICKET_LEN} printable ASCII characters: {ticket!r}")
    return ticket.encode("ascii")


def reply(address: int, command: int, status: int, extra: bytes = b"") -> bytes:
    """A device's answer to ``command``: ``command | 80`` with the status byte first."""
    return encode(address, command | REPLY_FLAG, bytes([status]) + extra)


class FrameDecoder:
    """Turns a byte stream into :class:`Frame` objects; keeps what it drops as counters."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self.bad_crc = 0
        self.bad_length = 0
        self.garbage_bytes = 0

    @property
    def bad_frames(self) -> int:
        return self.bad_crc + self.bad_length

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame, e.g. after the line went quiet past a reply timeout."""
        self.garbage_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        while True:
            start = buf.find(SYNC)
            if start < 0:
                # Keep a trailing AA: it may be the first half of the next sync.
                keep = 1 if buf[-1:] == SYNC[:1] else 0
                self.garbage_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                break
            if start:
                self.garbage_bytes += start
                del buf[:start]
            if len(buf) < HEADER_SIZE:
                break
            (length,) = struct.unpack_from("<H", buf, 4)
            if length > self.max_payload:
                self.bad_length += 1
                self._skip_sync()
                continue
            total = HEADER_SIZE + length + CRC_SIZE
            if len(buf) < total:
                break
            (crc,) = struct.unpack_from("<H", buf, HEADER_SIZE + length)
            if crc != crc16_modbus(buf[2 : HEADER_SIZE + length]):
                self.bad_crc += 1
                self._skip_sync()
                continue
            frames.append(Frame(buf[2], buf[3], bytes(buf[HEADER_SIZE : HEADER_SIZE + length])))
            del buf[:total]
        return frames

    def _skip_sync(self) -> None:
        self.garbage_bytes += 1
        del self._buf[:1]
