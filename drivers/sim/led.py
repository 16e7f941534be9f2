"""A row of hallframe window displays behind one pty, for tests and ``hallctl demo``.

It decodes with the same :mod:`drivers.hallframe` codec as the driver, so the
codec is pinned separately by literal frames in the tests; what this simulator
adds is display behaviour: per-address state, the reply rules of protocols.md
3.1 (broadcast and unknown addresses stay silent, bad CRC is ignored) and the
faults a real line shows (a dead display, a corrupted answer, a refusal).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Iterable

from drivers import hallframe
from drivers.led import (
    CMD_BRIGHTNESS,
    CMD_CALL,
    CMD_CLEAR,
    CMD_STATUS,
    CMD_TEXT,
    EFFECTS,
    TEXT_ENCODING,
)
from drivers.sim.pty import PtyPort, PtySim

log = logging.getLogger(__name__)

_EFFECT_NAMES = {code: name for name, code in EFFECTS.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class ScreenState:
    text: str = ""
    line: int = 0
    effect: str = "static"
    brightness: int = 15
    last_call: tuple[str, int] | None = None  # (ticket, window)


def call_text(ticket: str, window: int) -> str:
    """How a hallframe display words a call (docs/protocols.md 3.1)."""
    return f"请{ticket}号到{window}号窗口"


class LedBusSim(PtySim):
    def __init__(
        self,
        path: str,
        addresses: Iterable[int] = (1,),
        *,
        max_text_bytes: int = 64,
        reply_delay: float = 0.0,
    ) -> None:
        self.port = PtyPort(path)
        self.path = path
        self.max_text_bytes = max_text_bytes
        self._screens: dict[int, ScreenState] = {a: ScreenState() for a in addresses}
        self._decoder = hallframe.FrameDecoder()
        self._muted: set[int] = set()
        self._corrupt_next = False
        self._reject: list[tuple[int | None, int]] = []
        self.requests: collections.Counter[int] = collections.Counter()
        """Frames received per address, answered or not: lets tests count retries."""
        self.reply_delay = reply_delay
        self.overlaps = 0
        """Requests that arrived while an answer was still due: a collision on real RS-485."""
        self.min_idle: float | None = None
        """Shortest quiet time seen between our last answer and the next request."""
        self._replies_due = 0
        self._last_tx: float | None = None

    # -- lifecycle --------------------------------------------------------------------

    def _reset(self) -> None:
        self._decoder = hallframe.FrameDecoder()

    # -- inspection and faults ----------------------------------------------------------

    def screen(self, address: int) -> ScreenState:
        return self._screens[address]

    @property
    def bad_frames(self) -> int:
        return self._decoder.bad_frames

    def mute(self, address: int) -> None:
        """The display at ``address`` dies: it still receives, but never answers."""
        self._muted.add(address)

    def unmute(self, address: int) -> None:
        self._muted.discard(address)

    def corrupt_next_reply(self) -> None:
        """Flip a CRC bit in the next reply, as line noise would."""
        self._corrupt_next = True

    def reject_next(self, status: int, address: int | None = None) -> None:
        """Answer the next request (to ``address``, or any) with ``status`` and change nothing."""
        self._reject.append((address, status))

    # -- device behaviour -------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if not frame.is_reply:
                self._handle(frame)

    def _handle(self, frame: hallframe.Frame) -> None:
        now = asyncio.get_running_loop().time()
        if self._replies_due:
            self.overlaps += 1
        if self._last_tx is not None:
            idle = now - self._last_tx
            self.min_idle = idle if self.min_idle is None else min(self.min_idle, idle)
        address = frame.address
        if address == hallframe.BROADCAST:
            for target in self._screens:
                self._apply(target, frame)
            return
        if address not in self._screens:
            return
        self.requests[address] += 1
        if address in self._muted:
            return
        for i, (wanted, refusal) in enumerate(self._reject):
            if wanted in (None, address):
                del self._reject[i]
                self._reply(address, frame.command, refusal)
                return
        self._reply(address, frame.command, self._apply(address, frame))

    def _apply(self, address: int, frame: hallframe.Frame) -> int:
        state = self._screens[address]
        payload = frame.payload
        if frame.command == CMD_TEXT:
            if len(payload) < 2 or payload[1] not in _EFFECT_NAMES:
                return hallframe.STATUS_BAD_COMMAND
            raw = payload[2:]
            if len(raw) > self.max_text_bytes:
                return hallframe.STATUS_TEXT_TOO_LONG
            try:
                text = raw.decode(TEXT_ENCODING)
            except UnicodeDecodeError:
                return hallframe.STATUS_UNSUPPORTED_CHAR
            state = dataclasses.replace(state, text=text, line=payload[0], effect=_EFFECT_NAMES[payload[1]])
        elif frame.command == CMD_CLEAR:
            state = dataclasses.replace(state, text="", line=0, effect="static")
        elif frame.command == CMD_BRIGHTNESS:
            if len(payload) != 1 or payload[0] > 15:
                return hallframe.STATUS_BAD_COMMAND
            state = dataclasses.replace(state, brightness=payload[0])
        elif frame.command == CMD_CALL:
            ticket_raw, nul, rest = payload.partition(b"\x00")
            if not nul or len(rest) != 1 or not ticket_raw or not ticket_raw.isascii():
                return hallframe.STATUS_BAD_COMMAND
            ticket, window = ticket_raw.decode("ascii"), rest[0]
            state = dataclasses.replace(
                state,
                text=call_text(ticket, window),
                line=0,
                effect="static",
                last_call=(ticket, window),
            )
        elif frame.command != CMD_STATUS:
            return hallframe.STATUS_BAD_COMMAND
        self._screens[address] = state
        return hallframe.STATUS_OK

    def _reply(self, address: int, command: int, status: int) -> None:
        data = bytearray(hallframe.reply(address, command, status))
        if self._corrupt_next:
            self._corrupt_next = False
            data[-1] ^= 0x01
        if self.reply_delay > 0:
            self._replies_due += 1
            asyncio.get_running_loop().call_later(self.reply_delay, self._send_late, bytes(data))
        else:
            self._send(bytes(data))

    def _send_late(self, data: bytes) -> None:
        self._replies_due -= 1
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.port.write(data)
        self._last_tx = asyncio.get_running_loop().time()
