"""Evaluation pads (评价器) for 好差评, speaking hallctl's ``AA 55`` frame.

No public key-code protocol exists for real pads, so hallctl defines this one
(docs/protocols.md section 4, same frame as 3.1); vendor pads map onto it through a
plug-in. One pad per serial line: pads are wired point to point (RS-232 or
USB-serial), which is why the pad may speak without being asked.

Host → pad (the pad answers ``cmd | 80`` with a status byte, 00 = OK):

* ``20`` start rating, payload ``staff id (GB18030) 00 ticket (ASCII)``: the pad
  shows the prompt and waits for one key.
* ``22`` cancel: the pad drops the prompt (the visitor left, the window moved on).
* ``10`` status: asked once per connect, to know the pad is really there.

Pad → host:

* ``21`` key, payload one byte, level 1–5 (5 非常满意 … 1 非常不满意). The host
  acknowledges with ``A1 00`` so the pad may thank the visitor and clear the
  prompt; a level outside 1–5 is answered ``A1 02``, counted as a bad frame and
  never delivered, because a guessed grade would be a false record.
* ``22`` timeout: the pad gave up waiting. Acknowledged with ``A2 00`` and passed
  on through ``on_timeout``; the daemon records "未评价" (:data:`UNRATED`), never a
  default grade, since staff must not be able to produce ratings by inaction.

The pad is the only sender besides the host, so replies are matched by command
alone. Keys arriving while no rating was started are still delivered: whether
they count is the daemon's decision (it knows the current visit), not the link's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import ClassVar

from drivers import hallframe
from drivers.base import HealthCallback, HealthTracker
from drivers.errors import DeviceError, DeviceOffline, DeviceTimeout
from drivers.link import ByteLink, open_link
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

log = logging.getLogger(__name__)

LEVELS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
UNRATED = "未评价"

CMD_STATUS = 0x10
CMD_START = 0x20
CMD_KEY = 0x21
CMD_CANCEL = 0x22
MAX_STAFF_BYTES = 32
STAFF_ENCODING = "gb18030"


class PadRejected(DeviceError):
    """The pad answered a request with a non-OK status."""

    code = "pad_rejected"

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(device, f"pad refused the request: {reason}")
        self.reason = reason


def encode_start(address: int, staff_id: str, ticket: str) -> bytes:
    try:
        staff = staff_id.encode(STAFF_ENCODING)
    except UnicodeEncodeError as exc:
        raise ValueError("staff id has a character GB18030 cannot carry") from exc
    if not staff or len(staff) > MAX_STAFF_BYTES or b"\x00" in staff:
        raise ValueError(f"staff id must be 1-{MAX_STAFF_BYTES} bytes in GB18030 without NUL")
    return hallframe.encode(address, CMD_START, staff + b"\x00" + hallframe.ticket_bytes(ticket))


def decode_start(payload: bytes) -> tuple[str, str] | None:
    """The pad's side of :func:`encode_start`; ``None`` for a malformed payload."""
    staff, nul, ticket = payload.partition(b"\x00")
    if not nul or not staff or not ticket:
        return None
    try:
        return staff.decode(STAFF_ENCODING), ticket.decode("ascii")
    except UnicodeDecodeError:
        return None


class EvalPad(SupervisedDriver):
    """One pad on its own serial line.

    ``on_key`` and ``on_timeout`` run on the reader, before the pad is answered, so
    they must be quick and must not raise (hand the event to a queue or bus).
    """

    kind: ClassVar[str] = "evalpad"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        address: int = 1,
        on_key: Callable[[int], None],
        on_timeout: Callable[[], None] | None = None,
        on_health: HealthCallback | None = None,
        baudrate: int = 9600,
        backoff: Backoff | None = None,
        reply_timeout: float = 0.2,
        retries: int = 2,
        gap: float = 0.02,
    ) -> None:
        if not 1 <= address < hallframe.RESERVED_ADDRESS:
            raise ValueError(f"pad address {address} out of range 1..254")
        self.name = name
        self.url = url
        self.address = address
        self.baudrate = baudrate
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.gap = gap
        self._on_key = on_key
        self._on_timeout = on_timeout
        self._health = HealthTracker(on_health)
        self._request_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._link: ByteLink | None = None
        self._decoder = hallframe.FrameDecoder()
        self._pending: tuple[int, asyncio.Future[int]] | None = None
        self._last_activity = 0.0
        self._supervisor: Supervisor[ByteLink] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )

    async def start_rating(self, staff_id: str, ticket: str) -> None:
        """Ask the visitor to rate ``staff_id`` for ``ticket``; the key arrives via ``on_key``."""
        await self._transact(CMD_START, encode_start(self.address, staff_id, ticket))

    async def cancel(self) -> None:
        await self._transact(CMD_CANCEL, hallframe.encode(self.address, CMD_CANCEL))

    # -- link -------------------------------------------------------------------------

    async def _connect(self) -> ByteLink:
        return await open_link(self.url, baudrate=self.baudrate, name=self.name)

    async def _disconnect(self, link: ByteLink) -> None:
        await link.close()

    async def _serve(self, link: ByteLink) -> None:
        self._decoder = hallframe.FrameDecoder()
        self._link = link
        probe = asyncio.create_task(self._probe(), name=f"drivers.evalpad.{self.name}.probe")
        try:
            while True:
                try:
                    data = await link.read(4096, timeout=60.0)
                except DeviceTimeout:
                    continue
                await self._received(data)
        finally:
            self._link = None
            probe.cancel()
            await asyncio.wait([probe])
            pending, self._pending = self._pending, None
            if pending is not None and not pending[1].done():
                pending[1].set_exception(DeviceOffline(self.name, "link lost while waiting for the pad"))

    async def _probe(self) -> None:
        """Health turns ``ok`` only once the pad itself answers, not just its adapter."""
        try:
            await self._transact(CMD_STATUS, hallframe.encode(self.address, CMD_STATUS))
        except DeviceError as exc:
            log.debug("%s: status probe: %s", self.name, exc.message)

    async def _received(self, data: bytes) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        decoder = self._decoder
        bad, garbage = decoder.bad_frames, decoder.garbage_bytes
        frames = decoder.feed(data)
        counters = self._health.counters
        counters.bad_frames += decoder.bad_frames - bad
        counters.garbage_bytes += decoder.garbage_bytes - garbage
        for frame in frames:
            if frame.address != self.address:
                counters.bad_frames += 1
                continue
            self._health.set("ok")
            if frame.is_reply:
                pending = self._pending
                if pending is not None and pending[0] == frame.request_command and not pending[1].done():
                    pending[1].set_result(frame.status if frame.status is not None else -1)
            elif frame.command == CMD_KEY:
                await self._key(frame)
            elif frame.command == CMD_CANCEL:
                await self._write(hallframe.reply(self.address, CMD_CANCEL, hallframe.STATUS_OK))
                if self._on_timeout is not None:
                    self._on_timeout()
            else:
                counters.bad_frames += 1
                await self._write(hallframe.reply(self.address, frame.command, hallframe.STATUS_BAD_COMMAND))

    async def _key(self, frame: hallframe.Frame) -> None:
        level = frame.payload[0] if len(frame.payload) == 1 else None
        if level not in LEVELS:
            self._health.counters.bad_frames += 1
            log.warning("%s: key frame with invalid level %s ignored", self.name, frame.payload.hex(" "))
            await self._write(hallframe.reply(self.address, CMD_KEY, hallframe.STATUS_BAD_COMMAND))
            return
        assert level is not None
        self._on_key(level)
        await self._write(hallframe.reply(self.address, CMD_KEY, hallframe.STATUS_OK))

    async def _write(self, data: bytes) -> None:
        link = self._link
        if link is None:
            raise DeviceOffline(self.name, "pad not connected")
        async with self._write_lock:
            wait = self._last_activity + self.gap - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)  # inter-frame gap on the wire, not synchronisation
            await link.write(data)
            self._last_activity = asyncio.get_running_loop().time()

    async def _transact(self, command: int, data: bytes) -> None:
        async with self._request_lock:
            attempts = 1 + self.retries
            loop = asyncio.get_running_loop()
            for attempt in range(1, attempts + 1):
                future: asyncio.Future[int] = loop.create_future()
                self._pending = (command, future)
                try:
                    await self._write(data)
                    async with asyncio.timeout(self.reply_timeout):
                        status = await future
                except TimeoutError:
                    self._health.counters.timeouts += 1
                    log.debug("%s: pad silent (attempt %d/%d)", self.name, attempt, attempts)
                    self._decoder.reset()
                    continue
                finally:
                    self._pending = None
                if status != hallframe.STATUS_OK:
                    raise PadRejected(self.name, hallframe.STATUS_REASONS.get(status, f"status_{status:02x}"))
                return
            self._health.set("offline", "pad not answering")
            raise DeviceTimeout(self.name, f"pad did not answer after {attempts} tries")
