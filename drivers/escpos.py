"""ESC/POS ticket printers (取号机 thermal printers): ticket layout, status codec, driver.

Three layers, as for every device kind:

* :func:`render_ticket` turns a :class:`TicketPrint` into the exact bytes a printer gets.
  It drives python-escpos's pure ``Dummy`` printer, but sends Chinese text itself
  (``FS &`` then raw GB18030) because python-escpos 3.1 never sends ``FS &`` and picks
  the encoding per string (docs/protocols.md 2.5).
* :func:`parse_status` reads the four ``DLE EOT n`` reply bytes into a
  :class:`PrinterStatus`; it checks the fixed bits so line noise or an Automatic Status
  Back byte is never mistaken for "all good".
* :class:`EscPosPrinter` keeps the link up (:class:`~drivers.reconnect.Supervisor`),
  polls status while idle so a paper-out reaches the hall's dashboard before the next
  visitor swipes, and refuses to print when the printer cannot deliver a ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Final, Literal

from drivers.base import AsyncContextDriver, Health, HealthCallback, HealthState, HealthTracker
from drivers.errors import DeviceError, DeviceOffline, DeviceTimeout, FrameError
from drivers.link import ByteLink, open_link
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

if TYPE_CHECKING:
    from escpos.printer import Dummy

log = logging.getLogger(__name__)

__all__ = [
    "CoverOpen",
    "CutterError",
    "EscPosPrinter",
    "PaperOut",
    "PrintIncomplete",
    "PrinterFault",
    "PrinterNotReady",
    "PrinterReportsOffline",
    "PrinterStatus",
    "PrinterUnreachable",
    "RecoverableError",
    "StatusMode",
    "TicketLayout",
    "TicketPrint",
    "check_status_byte",
    "parse_status",
    "render_ticket",
    "status_query",
]

# --------------------------------------------------------------------------- commands

ESC_INIT: Final = b"\x1b\x40"
FS_CHINESE_ON: Final = b"\x1c\x26"
GS_ASB_OFF: Final = b"\x1d\x61\x00"
LF: Final = b"\n"
DLE_EOT: Final = b"\x10\x04"
DLE_ENQ_CLEAR: Final = b"\x10\x05\x02"  # recover from a cutter error and drop the half-done job

STATUS_PRINTER: Final = 1
STATUS_OFFLINE_CAUSE: Final = 2
STATUS_ERROR_CAUSE: Final = 3
STATUS_PAPER: Final = 4

_FIXED_MASK: Final = 0x93
_FIXED_VALUE: Final = 0x12

# Font A in Chinese mode: ASCII cells are 12 dots wide, Chinese cells 24.
_DOTS_PER_COLUMN: Final = 12

NUMBER_SIZE: Final = 4  # GS ! 0x33: the number is what a visitor looks for across the hall
TITLE_SIZE: Final = 2


def status_query(n: int) -> bytes:
    """``DLE EOT n``: the real-time status request, answered even while printing."""
    if n not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT n must be 1..4, not {n}")
    return DLE_EOT + bytes([n])


# --------------------------------------------------------------------------- ticket


@dataclasses.dataclass(frozen=True)
class TicketPrint:
    """What goes on one paper ticket; the daemon fills it, personal data already masked.

    ``issued_at`` is printed as its own wall-clock time, so the daemon passes hall-local
    time; ``qr_payload`` is the opaque ASCII token (python-escpos would send anything
    else as UTF-8, which GBK printers mangle).
    """

    hall_name: str
    category_name: str
    number: str
    waiting_ahead: int
    issued_at: dt.datetime
    qr_payload: str
    holder_masked: str | None = None
    footer: str = ""
    window_hint: str | None = None
    priority_label: str | None = None

    def __post_init__(self) -> None:
        # Checked here, not at print time, so a bad ticket fails in the daemon's code
        # path with a clear message instead of as a half-printed slip.
        payload = self.qr_payload
        if not payload or not payload.isascii() or not payload.isprintable():
            raise ValueError("qr_payload must be non-empty printable ASCII")
        if len(self.qr_payload) > 500:
            raise ValueError("qr_payload too long for a ticket QR code")
        if self.waiting_ahead < 0:
            raise ValueError("waiting_ahead must be >= 0")
        if not self.number:
            raise ValueError("number must not be empty")


TicketLayout = TicketPrint


def _clean(text: str) -> str:
    """Control characters in configured text would be ESC/POS commands on the wire."""
    return "".join(" " if (ord(c) < 0x20 or ord(c) == 0x7F) else c for c in text)


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _wrap(text: str, columns: int) -> list[str]:
    """Split by printed width, because a Chinese character takes two ASCII cells."""
    columns = max(columns, 2)
    lines: list[str] = []
    current = ""
    width = 0
    for c in text:
        w = _columns(c)
        if width + w > columns and current:
            lines.append(current)
            current, width = "", 0
        current += c
        width += w
    if current or not lines:
        lines.append(current)
    return lines


_ESCPOS = "escpos.printer"


def load_renderer() -> None:
    """Import python-escpos (about 10 MB and 0.3 s: its printer profiles, PIL, qrcode, barcode).

    Deferred to the first ticket, so a hall whose printers are offline, or that has none,
    never carries it; :meth:`EscPosPrinter.print_ticket` runs it in a thread the first time,
    so the event loop does not stall on the import.
    """
    import escpos.printer  # noqa: F401


def _size(p: Dummy, magnification: int) -> None:
    p.set(custom_size=True, width=magnification, height=magnification)


def _text_block(p: Dummy, text: str, columns: int, magnification: int = 1) -> None:
    for line in _wrap(_clean(text), columns // magnification):
        p._raw(line.encode("gb18030") + LF)


def render_ticket(t: TicketPrint, paper_width_dots: int = 576) -> bytes:
    """The ticket as ESC/POS bytes: ``ESC @``, ``FS &``, GB18030 lines, native QR, cut.

    Chinese printers in Chinese mode take GB18030 (often only its GBK subset); a line
    that needs 4-byte GB18030 (rare name characters, CJK Ext-B) is still sent as
    GB18030 and may print as garbage on GBK-only fonts: no raster fallback yet.
    """
    from escpos.printer import Dummy

    columns = paper_width_dots // _DOTS_PER_COLUMN
    p = Dummy(profile="TM-T88V")  # declares cutter and native QR, so cut() and qr() emit
    p._raw(ESC_INIT + FS_CHINESE_ON)
    p.set(align="center", bold=True)
    _size(p, 1)
    _text_block(p, t.hall_name, columns)
    p._raw(LF)
    title = TITLE_SIZE if _columns(t.category_name) * TITLE_SIZE <= columns else 1
    _size(p, title)
    _text_block(p, t.category_name, columns, title)
    if t.priority_label:
        _size(p, 1)
        _text_block(p, f"【{t.priority_label}】", columns)
    _size(p, NUMBER_SIZE)
    _text_block(p, t.number, columns, NUMBER_SIZE)
    _size(p, 1)
    p.set(bold=False)
    _text_block(p, f"您前面还有 {t.waiting_ahead} 人等候", columns)
    if t.window_hint:
        _text_block(p, t.window_hint, columns)
    if t.holder_masked:
        _text_block(p, f"取号人：{t.holder_masked}", columns)
    p._raw(LF)
    p.set(align="center")  # ESC a 1 right before the symbol: native QR has no centring of its own
    p.qr(t.qr_payload, ec=1, size=6, model=2, native=True)  # ec=1: level M, 0x31
    p._raw(LF)
    _text_block(p, f"取号时间：{t.issued_at.strftime('%Y-%m-%d %H:%M:%S')}", columns)
    for line in t.footer.splitlines():
        _text_block(p, line, columns)
    p.cut(mode="FULL")  # ESC d 6, GS V 0
    return bytes(p.output)


# --------------------------------------------------------------------------- status


def check_status_byte(b: int, device: str = "printer") -> int:
    """Refuse bytes whose fixed bits are wrong: noise and ASB bytes must not read as OK."""
    if (b & _FIXED_MASK) != _FIXED_VALUE:
        raise FrameError(device, f"status byte {b:02x} has wrong fixed bits")
    return b


@dataclasses.dataclass(frozen=True)
class PrinterStatus:
    online: bool
    cover_open: bool
    paper_near_end: bool
    paper_out: bool
    cutter_error: bool
    unrecoverable: bool
    recoverable_error: bool

    @property
    def reason(self) -> str:
        """Most serious problem first: that is what staff must fix before anything else."""
        if self.unrecoverable:
            return "unrecoverable_error"
        if self.cutter_error:
            return "cutter_error"
        if self.cover_open:
            return "cover_open"
        if self.paper_out:
            return "paper_out"
        if self.recoverable_error:
            return "recoverable_error"
        if not self.online:
            return "printer_offline"
        if self.paper_near_end:
            return "paper_near_end"
        return ""

    @property
    def state(self) -> HealthState:
        reason = self.reason
        if reason == "":
            return "ok"
        if reason == "paper_near_end":
            return "degraded"
        return "error"

    @property
    def ready(self) -> bool:
        return self.state in ("ok", "degraded")


def parse_status(replies: Mapping[int, int], device: str = "printer") -> PrinterStatus:
    """Combine the ``DLE EOT 1..4`` replies (keyed by n) into one status.

    Paper sensors report each condition on two bits; either one counts, because a
    false "paper out" stops a kiosk for a minute while a missed one wastes tickets.
    """
    for n in (1, 2, 3, 4):
        if n not in replies:
            raise ValueError(f"missing DLE EOT {n} reply")
        check_status_byte(replies[n], device)
    printer = replies[STATUS_PRINTER]
    offline = replies[STATUS_OFFLINE_CAUSE]
    error = replies[STATUS_ERROR_CAUSE]
    paper = replies[STATUS_PAPER]
    return PrinterStatus(
        online=not printer & 0x08,
        cover_open=bool(offline & 0x04),
        paper_near_end=bool(paper & 0x0C),
        paper_out=bool(paper & 0x60) or bool(offline & 0x20),
        cutter_error=bool(error & 0x08),
        unrecoverable=bool(error & 0x20),
        # bit 2 is undefined on some models (TM-T88III), so only bit 6 is trusted.
        recoverable_error=bool(error & 0x40),
    )


# --------------------------------------------------------------------------- errors


class PrinterNotReady(DeviceError):
    """Nothing was sent: the printer cannot deliver a ticket now. ``reason`` says why."""

    code: ClassVar[str] = "printer_not_ready"

    @property
    def reason(self) -> str:
        return self.code


class PaperOut(PrinterNotReady):
    code = "paper_out"


class CoverOpen(PrinterNotReady):
    code = "cover_open"


class CutterError(PrinterNotReady):
    code = "cutter_error"


class PrinterFault(PrinterNotReady):
    code = "unrecoverable_error"


class RecoverableError(PrinterNotReady):
    code = "recoverable_error"


class PrinterReportsOffline(PrinterNotReady):
    code = "printer_offline"


class PrinterUnreachable(PrinterNotReady, DeviceOffline):
    """No link or no status reply; also a :class:`DeviceOffline` for generic handlers."""

    code = "offline"


_NOT_READY: Final[dict[str, type[PrinterNotReady]]] = {
    cls.code: cls
    for cls in (
        PaperOut,
        CoverOpen,
        CutterError,
        PrinterFault,
        RecoverableError,
        PrinterReportsOffline,
        PrinterUnreachable,
    )
}


class PrintIncomplete(DeviceError):
    """The ticket was sent but may not have come out whole (paper ran out, link dropped).

    The number is consumed; the daemon decides whether to reprint or send the visitor
    to the help desk.
    """

    code: ClassVar[str] = "print_incomplete"

    def __init__(self, device: str, reason: str, message: str) -> None:
        super().__init__(device, message)
        self.reason = reason


# --------------------------------------------------------------------------- driver

StatusMode = Literal["query", "none"]
"""``query``: ``DLE EOT`` before and after every ticket and while idle (the default).
``none``: the printer never answers (many network-only printers, some cheap serial ones,
printers behind a one-way serial converter): print blind, health ``unknown``."""

STATUS_MODES: Final[tuple[StatusMode, ...]] = ("query", "none")


class EscPosPrinter(SupervisedDriver, AsyncContextDriver):
    """One ESC/POS ticket printer on a serial port, pty, or ``tcp://host:9100``.

    ``open()`` does not fail when the printer is absent: an absent printer is a health
    state (``offline``) and the supervisor keeps trying, so a kiosk started before its
    printer was plugged in heals by itself.

    With ``status_mode="none"`` the driver never sends ``DLE EOT``: a ticket is written as
    soon as the link is up, health is ``unknown`` while connected (``offline`` when the link
    cannot be opened or drops), and paper-out or a jam cannot be seen.
    """

    kind: ClassVar[str] = "escpos"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        on_health: HealthCallback | None = None,
        baudrate: int = 9600,
        status_timeout: float = 0.5,
        backoff: Backoff | None = None,
        poll_interval: float = 3.0,
        paper_width_dots: int = 576,
        chunk_size: int = 256,
        chunk_pause: float = 0.005,
        status_mode: StatusMode = "query",
    ) -> None:
        if status_mode not in STATUS_MODES:
            raise ValueError(f"status_mode must be one of {STATUS_MODES}, not {status_mode!r}")
        self.name = name
        self.status_mode: StatusMode = status_mode
        self.url = url
        self._baudrate = baudrate
        self._status_timeout = status_timeout
        self._poll_interval = poll_interval
        self.paper_width_dots = paper_width_dots
        self._chunk_size = max(1, chunk_size)
        self._chunk_pause = chunk_pause
        self._health = HealthTracker(on_health)
        self._lock = asyncio.Lock()  # one conversation with the printer at a time
        self._link: ByteLink | None = None
        self._wake = asyncio.Event()
        self._supervisor: Supervisor[ByteLink] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )
        self._task: asyncio.Task[None] | None = None
        self.last_status: PrinterStatus | None = None

    # -- lifecycle (run, health, counters, connected: SupervisedDriver)

    async def open(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"drivers.escpos.{self.name}.run")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._health.set("offline", "closed")

    async def _connect(self) -> ByteLink:
        return await open_link(self.url, baudrate=self._baudrate, name=self.name)

    async def _disconnect(self, link: ByteLink) -> None:
        self._link = None
        await link.close()

    async def _serve(self, link: ByteLink) -> None:
        async with self._lock:
            # A printer left with Automatic Status Back on would interleave unsolicited
            # bytes with our replies.
            await link.write(GS_ASB_OFF)
            self._link = link
        if self.status_mode == "none":
            await self._serve_blind(link)
            return
        while True:
            async with self._lock:
                try:
                    self._apply(await self._query_status(link))
                except DeviceTimeout:
                    # A silent printer (switched off on a serial line) keeps its port;
                    # reconnecting would change nothing, so stay and keep asking.
                    self._health.counters.timeouts += 1
                    self._set_health("offline", "no status reply")
                except FrameError:
                    self._set_health("offline", "garbled status reply")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    async def _serve_blind(self, link: ByteLink) -> None:
        """No status queries: ``unknown`` while the link is up; a read notices it dropping."""
        self._set_health("unknown", "status queries off")
        while True:
            try:
                stray = await link.read(256, self._poll_interval)
            except DeviceTimeout:
                continue
            self._health.counters.garbage_bytes += len(stray)  # unasked bytes: nothing to read them as

    # -- status

    def _set_health(self, state: HealthState, detail: str) -> None:
        if self._health.current != Health(state, detail):
            if state == "ok":
                log.info("%s: printer ready", self.name)
            else:
                log.warning("%s: printer %s: %s", self.name, state, detail)
        self._health.set(state, detail)

    def _apply(self, status: PrinterStatus) -> None:
        self.last_status = status
        self._set_health(status.state, status.reason)

    async def _query_one(self, link: ByteLink, n: int) -> int:
        """One reply byte; stray bytes before it (old ASB, noise) are counted and skipped."""
        link.discard_input()
        await link.write(status_query(n))
        deadline = asyncio.get_running_loop().time() + self._status_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise DeviceTimeout(self.name, f"no reply to DLE EOT {n}")
            data = await link.read(1, remaining)
            try:
                return check_status_byte(data[0], self.name)
            except FrameError:
                self._health.counters.garbage_bytes += 1

    async def _query_status(self, link: ByteLink) -> PrinterStatus:
        replies = {n: await self._query_one(link, n) for n in (1, 2, 3, 4)}
        return parse_status(replies, self.name)

    def _refuse_blind(self) -> None:
        if self.status_mode == "none":
            raise PrinterUnreachable(self.name, "status queries are off (status = none)")

    async def status(self) -> PrinterStatus:
        """Ask the printer now; raises :class:`PrinterUnreachable` when it does not answer."""
        self._refuse_blind()
        async with self._lock:
            link = self._require_link()
            return await self._checked_status(link)

    def _require_link(self) -> ByteLink:
        link = self._link
        if link is None or not link.is_open:
            raise PrinterUnreachable(self.name, self._health.current.detail or "not connected")
        return link

    async def _checked_status(self, link: ByteLink) -> PrinterStatus:
        try:
            status = await self._query_status(link)
        except DeviceTimeout as exc:
            self._health.counters.timeouts += 1
            self._set_health("offline", "no status reply")
            raise PrinterUnreachable(self.name, "no status reply") from exc
        except FrameError as exc:
            self._set_health("offline", "garbled status reply")
            raise PrinterUnreachable(self.name, "garbled status reply") from exc
        except DeviceOffline as exc:
            self._wake.set()  # let the supervisor notice the dead link now, not at next poll
            raise PrinterUnreachable(self.name, exc.message) from exc
        self._apply(status)
        return status

    # -- printing

    async def print_ticket(self, t: TicketPrint) -> None:
        """Print one ticket, or raise without sending a byte of it.

        Raises :class:`PrinterNotReady` (``reason``: ``paper_out``, ``cover_open``,
        ``offline``…) when the printer cannot print, and :class:`PrintIncomplete` when
        the status after printing shows the ticket may not have come out whole.

        With ``status_mode="none"`` the ticket is written without asking first or after:
        only an absent link (:class:`PrinterUnreachable`) or a write that fails
        (:class:`PrintIncomplete`) is seen.
        """
        if _ESCPOS not in sys.modules:
            await asyncio.to_thread(load_renderer)
        data = render_ticket(t, self.paper_width_dots)
        async with self._lock:
            link = self._require_link()
            if self.status_mode == "none":
                try:
                    await self._write_paced(link, data)
                except DeviceError as exc:
                    self._wake.set()
                    raise PrintIncomplete(self.name, "offline", f"link lost while printing: {exc.message}") from exc
                return
            before = await self._checked_status(link)
            if not before.ready:
                raise _NOT_READY[before.reason](self.name, f"not printing: {before.reason}")
            try:
                await self._write_paced(link, data)
            except DeviceError as exc:
                self._wake.set()
                raise PrintIncomplete(self.name, "offline", f"link lost while printing: {exc.message}") from exc
            try:
                after = await self._checked_status(link)
            except PrinterUnreachable as exc:
                raise PrintIncomplete(self.name, "offline", "no status after printing") from exc
            if not after.ready:
                raise PrintIncomplete(self.name, after.reason, f"printer reports {after.reason}")

    async def _write_paced(self, link: ByteLink, data: bytes) -> None:
        # Cheap clones without RTS/CTS overrun their receive buffer on a long burst.
        for start in range(0, len(data), self._chunk_size):
            if start and self._chunk_pause > 0:
                await asyncio.sleep(self._chunk_pause)
            await link.write(data[start : start + self._chunk_size])

    async def recover(self) -> PrinterStatus:
        """Clear an autocutter error with ``DLE ENQ 2``.

        ``2`` drops the printer's buffer, so half a ticket is not printed again.
        """
        self._refuse_blind()
        async with self._lock:
            link = self._require_link()
            try:
                await link.write(DLE_ENQ_CLEAR)
            except DeviceOffline as exc:
                self._wake.set()
                raise PrinterUnreachable(self.name, exc.message) from exc
            return await self._checked_status(link)
