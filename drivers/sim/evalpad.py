"""An evaluation pad behind a pty, speaking the protocol in :mod:`drivers.evalpad`.

Visitors are simulated by :meth:`EvalPadSim.press`; a broken pad or a noisy line
by :meth:`EvalPadSim.press_raw`. The host's acknowledgements are kept in
:attr:`EvalPadSim.acks` and announced through an event, so tests can wait for the
driver's answer instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging

from drivers import hallframe
from drivers.evalpad import CMD_CANCEL, CMD_KEY, CMD_START, CMD_STATUS, decode_start
from drivers.sim.pty import PtyPort, PtySim

log = logging.getLogger(__name__)


class EvalPadSim(PtySim):
    def __init__(self, path: str, address: int = 1) -> None:
        self.port = PtyPort(path)
        self.path = path
        self.address = address
        self.prompt: tuple[str, str] | None = None
        """(staff id, ticket) while the pad asks for a rating."""
        self.thanked = False
        self.acks: list[tuple[int, int]] = []
        """(command, status) of every answer the host sent to the pad's own frames."""
        self.ack_received = asyncio.Event()
        self._decoder = hallframe.FrameDecoder()
        self._muted = False

    def _reset(self) -> None:
        self._decoder = hallframe.FrameDecoder()

    def mute(self, muted: bool = True) -> None:
        """A pad that receives but never answers (hung firmware)."""
        self._muted = muted

    # -- visitor side -----------------------------------------------------------------

    def press(self, level: int) -> None:
        """A visitor presses a key; any byte value is sent, so tests can send invalid levels."""
        self.port.write(hallframe.encode(self.address, CMD_KEY, bytes([level])))

    def press_raw(self, data: bytes) -> None:
        self.port.write(data)

    def time_out(self) -> None:
        """The pad gives up waiting for the visitor and tells the host."""
        self.prompt = None
        self.port.write(hallframe.encode(self.address, CMD_CANCEL))

    async def wait_ack(self, count: int) -> list[tuple[int, int]]:
        """Until the host has answered ``count`` of the pad's frames in total."""
        while len(self.acks) < count:
            self.ack_received.clear()
            await self.ack_received.wait()
        return self.acks[:count]

    # -- pad behaviour ----------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            if frame.address != self.address:
                continue
            if frame.is_reply:
                self._host_answered(frame)
            elif not self._muted:
                self.port.write(hallframe.reply(self.address, frame.command, self._handle(frame)))

    def _host_answered(self, frame: hallframe.Frame) -> None:
        status = frame.status if frame.status is not None else -1
        self.acks.append((frame.request_command, status))
        if frame.request_command == CMD_KEY and status == hallframe.STATUS_OK:
            self.prompt = None
            self.thanked = True
        self.ack_received.set()

    def _handle(self, frame: hallframe.Frame) -> int:
        if frame.command == CMD_START:
            prompt = decode_start(frame.payload)
            if prompt is None:
                return hallframe.STATUS_BAD_COMMAND
            self.prompt, self.thanked = prompt, False
        elif frame.command == CMD_CANCEL:
            self.prompt = None
        elif frame.command != CMD_STATUS:
            return hallframe.STATUS_BAD_COMMAND
        return hallframe.STATUS_OK
