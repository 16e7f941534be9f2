"""A simulated ESC/POS ticket printer that prints to PNG files.

It answers ``DLE EOT n`` with status bytes the test sets (paper, cover, cutter,
silence), interprets the print stream the way a Chinese-mode thermal printer does and,
on every cut, renders the ticket with Pillow and a Noto CJK font, so a test can read
the ticket's text and decode its QR code with a real scanner (zbar).

Real-time commands (``DLE EOT``, ``DLE ENQ``) are picked out of the raw byte stream
before the command interpreter sees it, as a printer's receive interrupt does: they
are answered even while a long command is still arriving or paper is out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import qrcode
from PIL import Image, ImageDraw, ImageFont

from drivers.sim.pty import PtyPort

log = logging.getLogger(__name__)

PaperState = Literal["ok", "near_end", "out"]

_MAX_BUFFERED: Final = 1 << 20  # a command longer than this is skipped, not buffered
_LINE_DOTS: Final = 30  # default line spacing: 24-dot font plus 6 dots (ESC 2)
_BASE_FONT: Final = 24

FONT_CANDIDATES: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-{style}.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-{style}.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-{style}.ttc",
)
_TTC_SC_INDEX: Final = 2  # Noto Sans CJK SC inside the collection: Simplified Chinese glyph shapes


# --------------------------------------------------------------------------- page model


@dataclasses.dataclass
class TextRun:
    data: bytearray
    width: int
    height: int
    bold: bool
    chinese: bool

    @property
    def text(self) -> str:
        if self.chinese:
            return bytes(self.data).decode("gb18030", errors="replace")
        return bytes(self.data).decode("cp437", errors="replace")


@dataclasses.dataclass
class TextLine:
    runs: list[TextRun]
    align: int

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)

    @property
    def height(self) -> int:
        return max((r.height for r in self.runs), default=1)


@dataclasses.dataclass(frozen=True)
class QrBlock:
    payload: bytes
    module: int
    ec: int
    align: int


@dataclasses.dataclass(frozen=True)
class Feed:
    dots: int


Block = TextLine | QrBlock | Feed


@dataclasses.dataclass(frozen=True)
class Cut:
    blocks: list[Block]
    partial: bool


# --------------------------------------------------------------------------- interpreter

_ESC_ARGS: Final[dict[int, int]] = {
    ord(c): n
    for c, n in {
        "@": 0,
        "a": 1,
        "E": 1,
        "!": 1,
        "d": 1,
        "J": 1,
        "t": 1,
        "M": 1,
        "-": 1,
        "G": 1,
        "V": 1,
        "2": 0,
        "3": 1,
        "p": 3,
        "R": 1,
        "{": 1,
        "=": 1,
        " ": 1,
        "e": 1,
        "r": 1,
        "c": 2,
        "$": 2,
        "\\": 2,
        "U": 1,
        "T": 1,
        "L": 0,
        "S": 0,
        "i": 0,
        "m": 0,
    }.items()
}
_FS_ARGS: Final[dict[int, int]] = {
    ord(c): n for c, n in {"&": 0, ".": 0, "!": 1, "C": 1, "S": 2, "W": 1, "-": 1, "p": 2}.items()
}
_GS_ARGS: Final[dict[int, int]] = {
    ord(c): n
    for c, n in {
        "!": 1,
        "a": 1,
        "B": 1,
        "L": 2,
        "W": 2,
        "H": 1,
        "h": 1,
        "w": 1,
        "f": 1,
        "r": 1,
        "I": 1,
        "P": 2,
        "b": 1,
        "$": 2,
        "\\": 2,
        "/": 1,
        "T": 1,
        "^": 3,
        ":": 0,
    }.items()
}
_CUT_SHORT: Final = frozenset({0x00, 0x01, 0x30, 0x31})
_CUT_FEED: Final = frozenset({0x41, 0x42, 0x61, 0x62, 0x67, 0x68})


class EscPosInterpreter:
    """The print stream as a printer sees it: commands change modes, text fills lines.

    Pure and incremental: bytes may arrive in any chunks, incomplete commands wait for
    the rest, and anything unknown is counted and skipped, never raised.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0
        self.unknown_commands = 0
        self.blocks: list[Block] = []
        self._runs: list[TextRun] = []
        self._line_align = 0
        self._reset_modes()

    def _reset_modes(self) -> None:
        self.align = 0
        self.bold = False
        self.gs_width = 1
        self.gs_height = 1
        self.esc_mode = 0
        self.fs_mode = 0
        self.chinese = False
        self.qr_payload = b""
        self.qr_module = 3
        self.qr_ec = 0x30

    def reset_parser(self) -> None:
        """Forget a half-received command and the unprinted line (paper ran out)."""
        self._buf.clear()
        self._skip = 0
        self._runs = []

    @property
    def pending_text(self) -> str:
        return "".join(r.text for r in self._runs)

    def take_blocks(self) -> list[Block]:
        blocks, self.blocks = self.blocks, []
        return blocks

    def feed(self, data: bytes) -> list[Cut]:
        self._buf += data
        events: list[Cut] = []
        buf = self._buf
        i = 0
        while i < len(buf):
            if self._skip:
                n = min(self._skip, len(buf) - i)
                i += n
                self._skip -= n
                continue
            b = buf[i]
            if b >= 0x20 and b != 0x7F:
                j = i
                while j < len(buf) and buf[j] >= 0x20 and buf[j] != 0x7F:
                    j += 1
                self._text(buf[i:j])
                i = j
                continue
            used = self._command(buf, i, events)
            if used == 0:
                if len(buf) - i > _MAX_BUFFERED:
                    self.unknown_commands += 1
                    i += 1
                    continue
                break
            i += used
        del buf[:i]
        return events

    # -- text

    def _run_size(self) -> tuple[int, int]:
        width, height = self.gs_width, self.gs_height
        if width == 1 and (self.esc_mode & 0x20 or self.fs_mode & 0x04):
            width = 2
        if height == 1 and (self.esc_mode & 0x10 or self.fs_mode & 0x08):
            height = 2
        return width, height

    def _text(self, data: bytes | bytearray) -> None:
        width, height = self._run_size()
        bold = self.bold or bool(self.esc_mode & 0x08)
        if not self._runs:
            self._line_align = self.align  # ESC a only counts at the start of a line
        last = self._runs[-1] if self._runs else None
        if last is not None and (last.width, last.height, last.bold, last.chinese) == (
            width,
            height,
            bold,
            self.chinese,
        ):
            last.data += data
        else:
            self._runs.append(TextRun(bytearray(data), width, height, bold, self.chinese))

    def _end_line(self) -> None:
        if self._runs:
            self.blocks.append(TextLine(self._runs, self._line_align))
            self._runs = []
        else:
            self.blocks.append(Feed(_LINE_DOTS))

    def _flush_line(self) -> None:
        if self._runs:
            self._end_line()

    # -- commands

    def _command(self, buf: bytearray, i: int, events: list[Cut]) -> int:
        """Bytes used by the command at ``i``; 0 when it has not fully arrived."""
        avail = len(buf) - i
        b = buf[i]
        if b == 0x0A:
            self._end_line()
            return 1
        if b in (0x00, 0x0D, 0x0C, 0x18):  # padding, CR, page-mode FF, CAN: nothing to draw
            return 1
        if b == 0x09:
            self._text(b"    ")
            return 1
        if b in (0x10, 0x1B, 0x1C, 0x1D) and avail < 2:
            return 0
        if b == 0x10:
            return self._dle(buf, i, avail)
        if b == 0x1B:
            return self._esc(buf, i, avail)
        if b == 0x1C:
            return self._fs(buf, i, avail)
        if b == 0x1D:
            return self._gs(buf, i, avail, events)
        self.unknown_commands += 1
        return 1

    def _dle(self, buf: bytearray, i: int, avail: int) -> int:
        # Real-time commands are normally taken out before the interpreter; skip leftovers.
        if buf[i + 1] in (0x04, 0x05, 0x14):
            return 3 if avail >= 3 else 0
        self.unknown_commands += 1
        return 1

    def _esc(self, buf: bytearray, i: int, avail: int) -> int:
        cmd = buf[i + 1]
        if cmd == ord("*"):  # bit image: m nL nH data
            if avail < 5:
                return 0
            dots = buf[i + 3] | buf[i + 4] << 8
            return self._skip_data(5, dots * (1 if buf[i + 2] in (0, 1) else 3), avail)
        nargs = _ESC_ARGS.get(cmd)
        if nargs is None:
            self.unknown_commands += 1
            return 2
        if avail < 2 + nargs:
            return 0
        n = buf[i + 2] if nargs else 0
        if cmd == ord("@"):
            self._runs = []  # ESC @ clears the unprinted line; paper already printed stays
            self._reset_modes()
        elif cmd == ord("a"):
            self.align = {0: 0, 1: 1, 2: 2, 0x30: 0, 0x31: 1, 0x32: 2}.get(n, self.align)
        elif cmd == ord("E"):
            self.bold = bool(n & 1)
        elif cmd == ord("!"):
            self.esc_mode = n
        elif cmd == ord("d"):
            self._flush_line()
            self.blocks.append(Feed(n * _LINE_DOTS))
        elif cmd == ord("J"):
            self._flush_line()
            self.blocks.append(Feed(n))
        return 2 + nargs

    def _fs(self, buf: bytearray, i: int, avail: int) -> int:
        cmd = buf[i + 1]
        nargs = _FS_ARGS.get(cmd)
        if nargs is None:
            self.unknown_commands += 1
            return 2
        if avail < 2 + nargs:
            return 0
        if cmd == ord("&"):
            self.chinese = True
        elif cmd == ord("."):
            self.chinese = False
        elif cmd == ord("!"):
            self.fs_mode = buf[i + 2]
        return 2 + nargs

    def _gs(self, buf: bytearray, i: int, avail: int, events: list[Cut]) -> int:
        cmd = buf[i + 1]
        if cmd == ord("V"):
            if avail < 3:
                return 0
            m = buf[i + 2]
            if m in _CUT_SHORT:
                self._cut(m in (0x01, 0x31), 0, events)
                return 3
            if m in _CUT_FEED:
                if avail < 4:
                    return 0
                self._cut(m in (0x42, 0x62, 0x68), buf[i + 3], events)
                return 4
            self.unknown_commands += 1
            return 3
        if cmd == ord("("):
            if avail < 5:
                return 0
            length = buf[i + 3] | buf[i + 4] << 8
            if buf[i + 2] == ord("k") and length <= _MAX_BUFFERED:
                if avail < 5 + length:
                    return 0
                self._symbol(bytes(buf[i + 5 : i + 5 + length]))
                return 5 + length
            return self._skip_data(5, length, avail)
        if cmd == ord("v"):  # raster image: 0 m xL xH yL yH data
            if avail < 8:
                return 0
            size = (buf[i + 4] | buf[i + 5] << 8) * (buf[i + 6] | buf[i + 7] << 8)
            self._flush_line()
            return self._skip_data(8, size, avail)
        if cmd == ord("k"):
            return self._barcode(buf, i, avail)
        if cmd == ord("*"):  # downloaded bit image: x y data (x*y*8 bytes)
            if avail < 4:
                return 0
            return self._skip_data(4, buf[i + 2] * buf[i + 3] * 8, avail)
        nargs = _GS_ARGS.get(cmd)
        if nargs is None:
            self.unknown_commands += 1
            return 2
        if avail < 2 + nargs:
            return 0
        if cmd == ord("!"):
            n = buf[i + 2]
            self.gs_width = min((n >> 4) & 0x07, 7) + 1
            self.gs_height = min(n & 0x07, 7) + 1
        return 2 + nargs

    def _skip_data(self, header: int, length: int, avail: int) -> int:
        """Consume a header now and let the feed loop drop ``length`` data bytes as they come."""
        if avail >= header + length:
            return header + length
        self._skip = length - (avail - header)
        return avail

    def _barcode(self, buf: bytearray, i: int, avail: int) -> int:
        if avail < 3:
            return 0
        m = buf[i + 2]
        if m <= 6:  # NUL-terminated data
            end = buf.find(b"\x00", i + 3)
            return 0 if end < 0 else end + 1 - i
        if avail < 4:
            return 0
        return self._skip_data(4, buf[i + 3], avail)

    def _symbol(self, body: bytes) -> None:
        if len(body) < 2 or body[0] != 0x31:  # only QR (cn 49) is drawn
            return
        fn, params = body[1], body[2:]
        if fn == 0x43 and params:
            self.qr_module = max(1, min(16, params[0]))
        elif fn == 0x45 and params:
            self.qr_ec = params[0]
        elif fn == 0x50 and params:
            self.qr_payload = params[1:]  # first byte is m = 0x30
        elif fn == 0x51:
            self._flush_line()
            if self.qr_payload:
                self.blocks.append(QrBlock(self.qr_payload, self.qr_module, self.qr_ec, self.align))

    def _cut(self, partial: bool, feed_dots: int, events: list[Cut]) -> None:
        self._flush_line()
        if feed_dots:
            self.blocks.append(Feed(feed_dots))
        events.append(Cut(self.take_blocks(), partial))


# --------------------------------------------------------------------------- rendering

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


class TicketRenderer:
    """Draws a page as a printer would: 24-dot glyphs scaled by GS !, QR from the stored data."""

    def __init__(self, paper_width_dots: int = 576, font_path: str | None = None) -> None:
        self.width = paper_width_dots
        self._paths = {
            False: font_path or _find_font("Regular"),
            True: font_path or _find_font("Bold") or _find_font("Regular"),
        }
        self._fonts: dict[tuple[int, bool], FontT] = {}

    def _font(self, size: int, bold: bool) -> FontT:
        key = (size, bold)
        if key not in self._fonts:
            path = self._paths[bold]
            if path is None:
                self._fonts[key] = ImageFont.load_default(size)
            else:
                index = _TTC_SC_INDEX if path.endswith(".ttc") else 0
                self._fonts[key] = ImageFont.truetype(path, size, index=index)
        return self._fonts[key]

    def _line(self, line: TextLine) -> Image.Image:
        pieces: list[Image.Image] = []
        for run in line.runs:
            font = self._font(_BASE_FONT * run.height, run.bold)
            text = run.text
            width = max(1, round(font.getlength(text)))
            height = _BASE_FONT * run.height + 6 * run.height
            img = Image.new("L", (width, height), 255)
            baseline = height - 3 * run.height
            ImageDraw.Draw(img).text((0, baseline), text, font=font, fill=0, anchor="ls")
            if run.width != run.height:
                img = img.resize((max(1, width * run.width // run.height), height))
            pieces.append(img)
        total = sum(p.width for p in pieces)
        height = max(p.height for p in pieces)
        out = Image.new("L", (total, height), 255)
        x = 0
        for p in pieces:
            out.paste(p, (x, height - p.height))
            x += p.width
        return out

    @staticmethod
    def _qr(block: QrBlock) -> Image.Image:
        levels = {
            0x30: qrcode.constants.ERROR_CORRECT_L,
            0x31: qrcode.constants.ERROR_CORRECT_M,
            0x32: qrcode.constants.ERROR_CORRECT_Q,
            0x33: qrcode.constants.ERROR_CORRECT_H,
        }
        code = qrcode.QRCode(
            error_correction=levels.get(block.ec | 0x30, qrcode.constants.ERROR_CORRECT_M),
            box_size=block.module,
            border=2,
        )
        code.add_data(block.payload)
        code.make(fit=True)
        img: Image.Image = code.make_image().get_image().convert("L")
        return img

    def render(self, blocks: list[Block]) -> Image.Image:
        placed: list[tuple[Image.Image | None, int, int]] = []  # image, align, height
        for block in blocks:
            if isinstance(block, Feed):
                placed.append((None, 0, block.dots))
            elif isinstance(block, TextLine):
                img = self._line(block)
                placed.append((img, block.align, img.height))
            else:
                try:
                    img = self._qr(block)
                except (ValueError, qrcode.exceptions.DataOverflowError):
                    continue
                placed.append((img, block.align, img.height))
        margin = 24
        page = Image.new("L", (self.width, sum(h for _, _, h in placed) + 2 * margin), 255)
        y = margin
        for piece, align, height in placed:
            if piece is not None:
                if piece.width > self.width:  # the head is this wide; the rest is lost
                    piece = piece.crop((0, 0, self.width, piece.height))
                x = (0, (self.width - piece.width) // 2, self.width - piece.width)[min(align, 2)]
                page.paste(piece, (x, y))
            y += height
        return page


def _find_font(style: str) -> str | None:
    for pattern in FONT_CANDIDATES:
        path = pattern.format(style=style)
        if os.path.exists(path):
            return path
    return None


# --------------------------------------------------------------------------- simulator


@dataclasses.dataclass(frozen=True)
class SimTicket:
    png_path: Path
    text_lines: list[str]
    qr_payloads: list[str]
    raw: bytes
    partial_cut: bool


class RealtimeFilter:
    """Takes ``DLE EOT n`` and ``DLE ENQ n`` out of a byte stream, even across chunks."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def split(self, data: bytes) -> list[bytes | tuple[int, int]]:
        """Stream pieces and ``(command, n)`` requests, in arrival order."""
        out: list[bytes | tuple[int, int]] = []
        plain = bytearray()
        for b in data:
            p = self._pending
            if not p:
                if b == 0x10:
                    p.append(b)
                else:
                    plain.append(b)
                continue
            if len(p) == 1:
                if b in (0x04, 0x05):
                    p.append(b)
                    continue
                plain += p
                p.clear()
            else:
                cmd = p[1]
                if (cmd == 0x04 and 1 <= b <= 4) or (cmd == 0x05 and 1 <= b <= 2):
                    if plain:
                        out.append(bytes(plain))
                        plain.clear()
                    out.append((cmd, b))
                    p.clear()
                    continue
                plain += p
                p.clear()
            if b == 0x10:
                p.append(b)
            else:
                plain.append(b)
        if plain:
            out.append(bytes(plain))
        return out


Reply = Callable[[bytes], None]


class EscPosSim:
    """The printer end of a pty (and optionally of a TCP port 9100 stand-in)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        out_dir: str | os.PathLike[str],
        *,
        paper_width_dots: int = 576,
        font_path: str | None = None,
        answers_status: bool = True,
    ) -> None:
        self.port = PtyPort(os.fspath(path)) if path is not None else None
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.renderer = TicketRenderer(paper_width_dots, font_path)
        self.tickets: list[SimTicket] = []
        self._cut = asyncio.Event()  # set on every cut: tests wait for a slip instead of sleeping
        self.torn_pages: list[list[str]] = []  # what came out before the paper ran out
        self.status_requests: list[int] = []
        self.recover_requests: list[int] = []
        self.events: list[str] = []  # "status 4", "recover 2", "cut": the order the host caused
        self.stream_bytes = 0  # every non-real-time byte received, printed or not
        self.discarded_bytes = 0
        self._interp = EscPosInterpreter()
        self._raw = bytearray()
        self._paper: PaperState = "ok"
        self._paper_left: int | None = None
        self._cover_open = False
        self._silent = False
        self.answers_status = answers_status  # False: a printer that never answers DLE EOT, yet prints
        self._cutter_error = False
        self._unrecoverable = False
        self._pty_filter = RealtimeFilter()
        self._tcp_server: asyncio.Server | None = None
        self._tcp_writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle

    async def start(self) -> None:
        self.plug()

    async def __aenter__(self) -> EscPosSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def plug(self) -> None:
        if self.port is None or self.port.plugged:
            return
        self._pty_filter = RealtimeFilter()
        port = self.port
        self.port.plug(lambda data: self.receive(data, self._pty_filter, port.write))

    def unplug(self) -> None:
        if self.port is not None:
            self.port.unplug()
        self._interp.reset_parser()

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._tcp_server = await asyncio.start_server(self._tcp_client, host, port)
        bound: int = self._tcp_server.sockets[0].getsockname()[1]
        return bound

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flt = RealtimeFilter()
        self._tcp_writers.add(writer)
        try:
            while data := await reader.read(4096):
                self.receive(data, flt, writer.write)
        except ConnectionError:
            pass
        finally:
            self._tcp_writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        if self.port is not None:
            self.port.close()
        for writer in list(self._tcp_writers):
            writer.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            with contextlib.suppress(ConnectionError):
                await self._tcp_server.wait_closed()
            self._tcp_server = None

    # -- faults the tests set

    def set_paper(self, state: PaperState) -> None:
        self._paper = state
        self._paper_left = None
        if state == "out":
            self._tear()

    def run_out_of_paper_after(self, nbytes: int) -> None:
        """Paper ends after ``nbytes`` more print bytes: a ticket torn mid-way."""
        self._paper_left = nbytes

    def set_cover_open(self, is_open: bool) -> None:
        self._cover_open = is_open
        if is_open:
            self._tear()

    def set_cutter_error(self, jammed: bool) -> None:
        self._cutter_error = jammed

    def set_unrecoverable(self, broken: bool) -> None:
        self._unrecoverable = broken

    def go_silent(self, silent: bool = True) -> None:
        """Powered off on a live cable: no replies, nothing printed."""
        self._silent = silent

    async def wait_tickets(self, count: int, timeout: float = 5.0) -> list[SimTicket]:
        """Wait (at most ``timeout`` s) until ``count`` tickets have been cut; a printer written to
        without status replies returns before the bytes have reached the paper."""
        async with asyncio.timeout(timeout):
            while len(self.tickets) < count:
                self._cut.clear()
                await self._cut.wait()
        return self.tickets

    def answer_status(self, answers: bool = True) -> None:
        """``False``: prints everything but never answers ``DLE EOT`` (network-only printers,
        one-way serial converters); the requests are still counted in ``status_requests``."""
        self.answers_status = answers

    @property
    def unknown_commands(self) -> int:
        return self._interp.unknown_commands

    # -- status

    def _can_print(self) -> bool:
        return not (
            self._silent or self._paper == "out" or self._cover_open or self._cutter_error or self._unrecoverable
        )

    def status_byte(self, n: int) -> int:
        out = self._paper == "out"
        error = self._cutter_error or self._unrecoverable
        if n == 1:
            offline = out or self._cover_open or error
            return 0x12 | (0x08 if offline else 0)
        if n == 2:
            return 0x12 | (0x04 if self._cover_open else 0) | (0x20 if out else 0) | (0x40 if error else 0)
        if n == 3:
            return 0x12 | (0x08 if self._cutter_error else 0) | (0x20 if self._unrecoverable else 0)
        paper = {"ok": 0x00, "near_end": 0x0C, "out": 0x6C}[self._paper]
        return 0x12 | paper

    # -- byte stream

    def receive(self, data: bytes, flt: RealtimeFilter, reply: Reply) -> None:
        """Everything the host wrote, in order: so a status asked after a cut sees the cut."""
        for piece in flt.split(data):
            if isinstance(piece, tuple):
                self._realtime(piece[0], piece[1], reply)
            else:
                self._stream(piece)

    def _realtime(self, cmd: int, n: int, reply: Reply) -> None:
        if self._silent:
            return
        if cmd == 0x04:
            self.status_requests.append(n)
            self.events.append(f"status {n}")
            if self.answers_status:
                reply(bytes([self.status_byte(n)]))
        else:
            self.recover_requests.append(n)
            self.events.append(f"recover {n}")
            self._cutter_error = False
            if n == 2:
                self._interp.reset_parser()

    def _stream(self, data: bytes) -> None:
        self.stream_bytes += len(data)
        if self._paper_left is not None and self._can_print():
            if len(data) >= self._paper_left:
                head, data = data[: self._paper_left], data[self._paper_left :]
                self._print(head)
                self.set_paper("out")
            else:
                self._paper_left -= len(data)
        if not self._can_print():
            self.discarded_bytes += len(data)
            return
        self._print(data)

    def _print(self, data: bytes) -> None:
        self._raw += data
        for cut in self._interp.feed(data):
            self._finish(cut)

    def _tear(self) -> None:
        blocks = self._interp.take_blocks()
        lines = [b.text.rstrip() for b in blocks if isinstance(b, TextLine)]
        pending = self._interp.pending_text
        if pending:
            lines.append(pending)
        self._interp.reset_parser()
        self._raw.clear()
        if lines:
            self.torn_pages.append(lines)

    def _finish(self, cut: Cut) -> None:
        raw, self._raw = bytes(self._raw), bytearray()
        path = self.out_dir / f"ticket-{len(self.tickets) + 1:04d}.png"
        self.renderer.render(cut.blocks).save(path)
        ticket = SimTicket(
            png_path=path,
            text_lines=[b.text.rstrip() for b in cut.blocks if isinstance(b, TextLine)],
            qr_payloads=[b.payload.decode("utf-8", errors="replace") for b in cut.blocks if isinstance(b, QrBlock)],
            raw=raw,
            partial_cut=cut.partial,
        )
        self.tickets.append(ticket)
        self.events.append("cut")
        self._cut.set()
        log.debug("sim printer: ticket %d cut", len(self.tickets))
