"""LED window displays (窗口屏) on an RS-485 line: one bus master, many addresses.

Every queue-system vendor has its own display protocol, so the wire format lives
behind :class:`DisplayProtocol`; scheduling, retries and health live in
:class:`LedBus` and never look at bytes. A second protocol (Onbon BX, a vendor's
GBK framing) is a new subclass registered in :data:`PROTOCOLS`.

Why the bus works the way it does:

* RS-485 is half duplex and multi-drop: two requests on the wire at once collide,
  so one request is in flight per line (an ``asyncio.Lock``), and a pause of
  ``gap`` seconds separates frames so slow display controllers see the boundary.
* A display that stops answering must not take the others down: after
  ``1 + retries`` silent attempts that *address* is reported ``offline`` while the
  bus stays ``ok``. A reply with a bad CRC is dropped by the codec and therefore
  looks like silence, which is retried.
* A display that answers "busy" is alive: busy is retried and, if it persists,
  raised as :class:`DisplayRejected` with reason ``busy`` without marking the
  address offline.
* Broadcast frames (address 0 in the hallframe protocol) get no reply by design,
  so they are sent once and never count against any address.
* Text that the display would refuse (too long, unencodable) is refused here,
  before it reaches the wire, with the same reason code the display would give.

Address health is reported through ``on_address_health(address, Health)`` and
:meth:`LedBus.address_health`; the latter folds in the bus state, so a daemon
that maps each display to a device only needs one call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from drivers import hallframe
from drivers.base import Health, HealthCallback, HealthTracker
from drivers.errors import DeviceError, DeviceOffline, DeviceTimeout
from drivers.link import ByteLink, open_link
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

log = logging.getLogger(__name__)

Effect = Literal["static", "scroll", "blink"]
AddressHealthCallback = Callable[[int, Health], None]

FrameT = TypeVar("FrameT")
FrameT_co = TypeVar("FrameT_co", covariant=True)


class DisplayRejected(DeviceError):
    """The display refused a request (or would have: ``sent`` is False then).

    ``reason`` is a stable snake_case word (``text_too_long``, ``unsupported_char``,
    ``bad_command``, ``busy``) the daemon can show or count without parsing text.
    """

    code = "display_rejected"

    def __init__(self, device: str, address: int, reason: str, message: str, *, sent: bool = True) -> None:
        super().__init__(device, message)
        self.address = address
        self.reason = reason
        self.sent = sent


class TextRefused(ValueError):
    """Raised by a protocol's encoder for text its displays cannot show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """Encoded bytes plus what the bus needs to match the answer."""

    address: int
    command: int
    data: bytes
    expects_reply: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ReplyStatus:
    address: int
    command: int  # the request command this answers
    status: int
    reason: str

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    @property
    def busy(self) -> bool:
        return self.reason == "busy"


class ReplyDecoder(Protocol[FrameT_co]):
    """Byte stream to frames; drops bad ones and counts them instead of raising."""

    @property
    def bad_frames(self) -> int: ...

    @property
    def garbage_bytes(self) -> int: ...

    def feed(self, data: bytes) -> Sequence[FrameT_co]: ...

    def reset(self) -> None: ...


class DisplayProtocol(ABC, Generic[FrameT]):
    """One display wire format. Encoders validate, so bad input never reaches the line."""

    name: ClassVar[str]

    def __init__(
        self,
        *,
        reply_timeout: float = 0.2,
        retries: int = 2,
        gap: float = 0.02,
        max_text_bytes: int = 64,
    ) -> None:
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.gap = gap
        self.max_text_bytes = max_text_bytes

    @abstractmethod
    def is_broadcast(self, address: int) -> bool: ...

    @abstractmethod
    def encode_text(self, address: int, text: str, line: int = 0, effect: Effect = "static") -> Request: ...

    @abstractmethod
    def encode_call(self, address: int, ticket: str, window: int) -> Request: ...

    @abstractmethod
    def encode_clear(self, address: int) -> Request: ...

    @abstractmethod
    def encode_brightness(self, address: int, level: int) -> Request: ...

    @abstractmethod
    def encode_status(self, address: int) -> Request: ...

    @abstractmethod
    def new_decoder(self) -> ReplyDecoder[FrameT]: ...

    @abstractmethod
    def parse_reply(self, frame: FrameT) -> ReplyStatus | None:
        """``None`` for frames that are not replies (e.g. our own request echoed by the adapter)."""


CMD_TEXT = 0x01
CMD_CLEAR = 0x02
CMD_BRIGHTNESS = 0x03
CMD_CALL = 0x04
CMD_STATUS = 0x10

EFFECTS: dict[str, int] = {"static": 0, "scroll": 1, "blink": 2}
TEXT_ENCODING = "gb18030"
MAX_BRIGHTNESS = 15


class HallFrameProtocol(DisplayProtocol[hallframe.Frame]):
    """hallctl's own ``AA 55`` frame (docs/protocols.md 3.1), text in GB18030."""

    name = "hallframe"

    def is_broadcast(self, address: int) -> bool:
        return address == hallframe.BROADCAST

    def _request(self, address: int, command: int, payload: bytes = b"") -> Request:
        if not 0 <= address < hallframe.RESERVED_ADDRESS:
            raise ValueError(f"display address {address} out of range 0..254")
        return Request(
            address=address,
            command=command,
            data=hallframe.encode(address, command, payload),
            expects_reply=not self.is_broadcast(address),
        )

    def encode_text(self, address: int, text: str, line: int = 0, effect: Effect = "static") -> Request:
        if effect not in EFFECTS:
            raise ValueError(f"unknown effect {effect!r}; expected one of {sorted(EFFECTS)}")
        if not 0 <= line <= 0xFF:
            raise ValueError(f"line {line} out of range 0..255")
        try:
            raw = text.encode(TEXT_ENCODING)
        except UnicodeEncodeError as exc:
            raise TextRefused("unsupported_char", f"text has a character GB18030 cannot carry at {exc.start}") from exc
        if len(raw) > self.max_text_bytes:
            raise TextRefused(
                "text_too_long",
                f"text is {len(raw)} bytes in GB18030; displays take at most {self.max_text_bytes}",
            )
        return self._request(address, CMD_TEXT, bytes([line, EFFECTS[effect]]) + raw)

    def encode_call(self, address: int, ticket: str, window: int) -> Request:
        if not 1 <= window <= 0xFF:
            raise ValueError(f"window {window} out of range 1..255")
        return self._request(address, CMD_CALL, hallframe.ticket_bytes(ticket) + b"\x00" + bytes([window]))

    def encode_clear(self, address: int) -> Request:
        return self._request(address, CMD_CLEAR)

    def encode_brightness(self, address: int, level: int) -> Request:
        if not 0 <= level <= MAX_BRIGHTNESS:
            raise ValueError(f"brightness {level} out of range 0..{MAX_BRIGHTNESS}")
        return self._request(address, CMD_BRIGHTNESS, bytes([level]))

    def encode_status(self, address: int) -> Request:
        return self._request(address, CMD_STATUS)

    def new_decoder(self) -> hallframe.FrameDecoder:
        return hallframe.FrameDecoder()

    def parse_reply(self, frame: hallframe.Frame) -> ReplyStatus | None:
        status = frame.status
        if status is None:
            return None
        reason = hallframe.STATUS_REASONS.get(status, f"status_{status:02x}")
        return ReplyStatus(frame.address, frame.request_command, status, reason)


PROTOCOLS: dict[str, type[DisplayProtocol[Any]]] = {"hallframe": HallFrameProtocol}


class LedBus(SupervisedDriver):
    """The master of one RS-485 line with any number of displays on it."""

    kind: ClassVar[str] = "led"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        protocol: str | DisplayProtocol[Any] = "hallframe",
        on_health: HealthCallback | None = None,
        on_address_health: AddressHealthCallback | None = None,
        addresses: Iterable[int] = (),
        baudrate: int = 9600,
        backoff: Backoff | None = None,
    ) -> None:
        if isinstance(protocol, str):
            try:
                protocol = PROTOCOLS[protocol]()
            except KeyError:
                raise ValueError(f"unknown display protocol {protocol!r}; known: {sorted(PROTOCOLS)}") from None
        self.name = name
        self.url = url
        self.protocol: DisplayProtocol[Any] = protocol
        self.baudrate = baudrate
        self.addresses = tuple(addresses)
        self._health = HealthTracker(on_health)
        self._on_address_health = on_address_health
        self._address_health: dict[int, Health] = {}
        self._lock = asyncio.Lock()
        self._link: ByteLink | None = None
        self._decoder: ReplyDecoder[Any] | None = None
        self._pending: tuple[int, int, asyncio.Future[ReplyStatus]] | None = None
        self._last_activity = 0.0
        self._supervisor: Supervisor[ByteLink] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )

    # -- lifecycle and health ---------------------------------------------------------

    def address_health(self, address: int) -> Health:
        """Health of one display: the bus state while the bus is down, else its own."""
        bus = self._health.current
        if bus.state != "ok":
            return bus
        return self._address_health.get(address, Health("degraded", "not contacted yet"))

    def _set_address_health(self, address: int, health: Health) -> None:
        if self._address_health.get(address) == health:
            return
        self._address_health[address] = health
        if health.state == "offline":
            log.warning("%s: display %d %s", self.name, address, health.detail)
        else:
            log.info("%s: display %d answers again", self.name, address)
        if self._on_address_health is not None:
            self._on_address_health(address, health)

    async def _connect(self) -> ByteLink:
        return await open_link(self.url, baudrate=self.baudrate, name=self.name)

    async def _disconnect(self, link: ByteLink) -> None:
        await link.close()

    async def _serve(self, link: ByteLink) -> None:
        self._decoder = self.protocol.new_decoder()
        self._link = link
        self._health.set("ok")
        probe = asyncio.create_task(self._probe(), name=f"drivers.led.{self.name}.probe")
        try:
            while True:
                try:
                    data = await link.read(4096, timeout=60.0)
                except DeviceTimeout:
                    continue
                self._received(data)
        finally:
            self._link = None
            probe.cancel()
            await asyncio.wait([probe])
            pending, self._pending = self._pending, None
            if pending is not None and not pending[2].done():
                pending[2].set_exception(DeviceOffline(self.name, "bus lost while waiting for a reply"))

    async def _probe(self) -> None:
        """Learn at connect time which configured displays answer, before anything is shown."""
        for address in self.addresses:
            try:
                await self.query(address)
            except DeviceOffline:
                return
            except DeviceError as exc:
                log.debug("%s: probe of display %d: %s", self.name, address, exc.message)

    def _received(self, data: bytes) -> None:
        decoder = self._decoder
        assert decoder is not None
        self._last_activity = asyncio.get_running_loop().time()
        bad, garbage = decoder.bad_frames, decoder.garbage_bytes
        frames = decoder.feed(data)
        counters = self._health.counters
        counters.bad_frames += decoder.bad_frames - bad
        counters.garbage_bytes += decoder.garbage_bytes - garbage
        for frame in frames:
            reply = self.protocol.parse_reply(frame)
            if reply is None:
                continue
            pending = self._pending
            if pending is not None and pending[:2] == (reply.address, reply.command) and not pending[2].done():
                pending[2].set_result(reply)
            else:
                log.debug("%s: unexpected reply from %d (late or stray)", self.name, reply.address)

    # -- requests ---------------------------------------------------------------------

    async def show_text(self, address: int, text: str, *, line: int = 0, effect: Effect = "static") -> None:
        await self._send(address, lambda: self.protocol.encode_text(address, text, line, effect))

    async def show_call(self, address: int, ticket: str, window: int) -> None:
        """The display composes the sentence itself ("请A008号到3号窗口" in hallframe)."""
        await self._send(address, lambda: self.protocol.encode_call(address, ticket, window))

    async def clear(self, address: int) -> None:
        await self._send(address, lambda: self.protocol.encode_clear(address))

    async def set_brightness(self, address: int, level: int) -> None:
        await self._send(address, lambda: self.protocol.encode_brightness(address, level))

    async def query(self, address: int) -> ReplyStatus:
        """Ask one display whether it is there; ``busy`` is an answer here, not an error."""
        if self.protocol.is_broadcast(address):
            raise ValueError("a broadcast address cannot be queried: nobody answers it")
        reply = await self._transact(self.protocol.encode_status(address), retry_busy=False)
        assert reply is not None
        return reply

    async def _send(self, address: int, build: Callable[[], Request]) -> None:
        try:
            request = build()
        except TextRefused as exc:
            raise DisplayRejected(self.name, address, exc.reason, str(exc), sent=False) from exc
        await self._transact(request, retry_busy=True)

    async def _transact(self, request: Request, *, retry_busy: bool) -> ReplyStatus | None:
        async with self._lock:
            address = request.address
            attempts = 1 + self.protocol.retries
            busy = False
            loop = asyncio.get_running_loop()
            for attempt in range(1, attempts + 1):
                link = self._link
                if link is None:
                    raise DeviceOffline(self.name, "bus not connected")
                await self._pause_for_gap()
                if not request.expects_reply:
                    await link.write(request.data)
                    self._last_activity = loop.time()
                    return None
                future: asyncio.Future[ReplyStatus] = loop.create_future()
                self._pending = (address, request.command, future)
                try:
                    await link.write(request.data)
                    self._last_activity = loop.time()
                    async with asyncio.timeout(self.protocol.reply_timeout):
                        reply = await future
                except TimeoutError:
                    self._health.counters.timeouts += 1
                    log.debug(
                        "%s: display %d silent (attempt %d/%d)",
                        self.name,
                        address,
                        attempt,
                        attempts,
                    )
                    if self._decoder is not None:
                        self._decoder.reset()  # a half-received frame is stale by now
                    continue
                finally:
                    self._pending = None
                self._set_address_health(address, Health("ok"))
                if reply.busy and retry_busy:
                    busy = True
                    continue
                if not reply.ok and not reply.busy:
                    raise DisplayRejected(
                        self.name,
                        address,
                        reply.reason,
                        f"display {address} refused the request: {reply.reason}",
                    )
                return reply
            if busy:
                raise DisplayRejected(self.name, address, "busy", f"display {address} stayed busy")
            self._set_address_health(address, Health("offline", f"no answer after {attempts} tries"))
            raise DeviceTimeout(self.name, f"display {address} did not answer after {attempts} tries")

    async def _pause_for_gap(self) -> None:
        """Keep the inter-frame gap: a wire-timing rule of the line, not a synchronisation."""
        wait = self._last_activity + self.protocol.gap - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
