"""ESC/POS bytes pinned to docs/protocols.md section 2, plus the simulator's stream interpreter."""

from __future__ import annotations

import datetime as dt
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError
from drivers.escpos import (
    PrinterStatus,
    TicketPrint,
    check_status_byte,
    parse_status,
    render_ticket,
    status_query,
)
from drivers.sim.escpos import EscPosInterpreter, EscPosSim, QrBlock, RealtimeFilter, TextLine

OK = 0x12

QR_T_20240501_A001 = bytes.fromhex(
    "1d 28 6b 04 00 31 41 32 00"
    "1d 28 6b 03 00 31 43 06"
    "1d 28 6b 03 00 31 45 31"
    "1d 28 6b 12 00 31 50 30" + b"T-20240501-A001".hex() + "1d 28 6b 03 00 31 51 30"
)


def ticket(**changes: object) -> TicketPrint:
    fields: dict[str, object] = {
        "hall_name": "西城区政务服务中心",
        "category_name": "户籍业务",
        "number": "A001",
        "waiting_ahead": 3,
        "issued_at": dt.datetime(2024, 5, 1, 9, 15, 2),
        "qr_payload": "T-20240501-A001",
        "holder_masked": "张*丰",
        "footer": "请留意叫号",
    }
    fields.update(changes)
    return TicketPrint(**fields)  # type: ignore[arg-type]


def status(printer: int = OK, offline: int = OK, error: int = OK, paper: int = OK) -> PrinterStatus:
    return parse_status({1: printer, 2: offline, 3: error, 4: paper})


# --------------------------------------------------------------------------- status


def test_status_query_bytes() -> None:
    """DLE EOT n is 10 04 n."""
    assert status_query(4) == b"\x10\x04\x04"
    assert status_query(1) == b"\x10\x04\x01"
    with pytest.raises(ValueError):
        status_query(5)


def test_all_good_status_is_ok() -> None:
    """12 on every query means ready to print."""
    s = status()
    assert s.online and not s.paper_out and not s.paper_near_end and not s.cover_open
    assert (s.state, s.reason, s.ready) == ("ok", "", True)


def test_paper_near_end_is_degraded_but_ready() -> None:
    """DLE EOT 4 = 1E: keep printing, warn staff to change the roll."""
    s = status(paper=0x1E)
    assert s.paper_near_end and not s.paper_out
    assert (s.state, s.reason, s.ready) == ("degraded", "paper_near_end", True)


@pytest.mark.parametrize("paper", [0x72, 0x7E])
def test_paper_out_is_error(paper: int) -> None:
    """DLE EOT 4 = 72 or 7E: out of paper, stop issuing tickets."""
    s = status(printer=0x1A, offline=0x32, paper=paper)
    assert s.paper_out
    assert (s.state, s.reason, s.ready) == ("error", "paper_out", False)


def test_cover_open() -> None:
    """DLE EOT 2 bit 2: cover open."""
    s = status(printer=0x1A, offline=0x16)
    assert s.cover_open and not s.online
    assert (s.state, s.reason) == ("error", "cover_open")


def test_cutter_and_unrecoverable_errors() -> None:
    """DLE EOT 3 bit 3 is the autocutter, bit 5 unrecoverable, which outranks it."""
    assert status(printer=0x1A, offline=0x52, error=0x1A).reason == "cutter_error"
    assert status(printer=0x1A, offline=0x52, error=0x3A).reason == "unrecoverable_error"
    assert status(error=0x52).reason == "recoverable_error"


def test_offline_without_cause() -> None:
    """DLE EOT 1 bit 3 alone (e.g. feed button held) still stops printing."""
    s = status(printer=0x1A)
    assert (s.state, s.reason, s.ready) == ("error", "printer_offline", False)


@pytest.mark.parametrize("bad", [0x00, 0x10, 0x13, 0x92, 0xFF, 0x02, 0x16 | 0x80])
def test_status_byte_with_wrong_fixed_bits_is_rejected(bad: int) -> None:
    """An ASB byte (x & 93 == 10) or noise must never read as a status."""
    with pytest.raises(FrameError):
        check_status_byte(bad)
    with pytest.raises(FrameError):
        parse_status({1: OK, 2: OK, 3: OK, 4: bad})


@given(st.integers(0, 255))
def test_fixed_bit_rule(b: int) -> None:
    """Exactly the bytes with bit1=1, bit4=1, bit0=0, bit7=0 are accepted."""
    valid = bool(b & 0x02) and bool(b & 0x10) and not b & 0x01 and not b & 0x80
    if valid:
        assert check_status_byte(b) == b
    else:
        with pytest.raises(FrameError):
            check_status_byte(b)


# --------------------------------------------------------------------------- ticket bytes


def test_ticket_starts_with_init_and_chinese_mode() -> None:
    """ESC @ then FS &: python-escpos never sends FS & by itself."""
    data = render_ticket(ticket())
    assert data.startswith(b"\x1b\x40\x1c\x26")


def test_ticket_contains_protocol_qr_sequence_centred() -> None:
    """The QR bytes are exactly docs/protocols.md 2.2, preceded by ESC a 1."""
    data = render_ticket(ticket())
    assert QR_T_20240501_A001 in data
    before = data[: data.index(QR_T_20240501_A001)]
    assert before.endswith(b"\x1b\x61\x01")


def test_ticket_text_is_gb18030() -> None:
    """Category name, masked holder and hall go out as GB18030 bytes."""
    data = render_ticket(ticket())
    assert bytes.fromhex("bba7bcaed2b5cef1") in data  # 户籍业务
    assert "户籍业务".encode("gb18030") in data
    assert "取号人：张*丰".encode("gb18030") in data
    assert "西城区政务服务中心".encode("gb18030") in data
    assert "户籍业务".encode() not in data  # not UTF-8


def test_ticket_number_is_large_and_ticket_is_cut() -> None:
    """The number at 4x4 (GS ! 33), then feed and full cut (ESC d 6, GS V 0)."""
    data = render_ticket(ticket(number="B123"))
    assert b"\x1d\x21\x33B123\n" in data
    assert data.endswith(b"\x1b\x64\x06\x1d\x56\x00")


def test_holder_line_absent_when_not_configured() -> None:
    """No masked name given → no holder line printed."""
    data = render_ticket(ticket(holder_masked=None))
    assert "取号人".encode("gb18030") not in data


def test_control_characters_in_text_cannot_inject_commands() -> None:
    """A hall name with ESC in it must not reach the wire as a command."""
    data = render_ticket(ticket(hall_name="大厅\x1b\x64\x09", footer="a\x1dV\x00b"))
    assert b"\x1b\x64\x09" not in data
    assert data.count(b"\x1d\x56") == 1


def test_long_footer_wraps_to_paper_width() -> None:
    """58 mm paper (384 dots, 32 columns): no printed line is wider than the head."""
    footer = "请您耐心等候，按叫号顺序到指定窗口办理业务，过号请重新取号。" * 2
    cuts = EscPosInterpreter().feed(render_ticket(ticket(footer=footer), paper_width_dots=384))
    lines = [b for b in cuts[0].blocks if isinstance(b, TextLine)]
    assert footer in "".join(line.text for line in lines)
    for line in lines:
        columns = sum(len(r.text.encode("gbk")) * r.width for r in line.runs)
        assert columns <= 32, line.text


@pytest.mark.parametrize(
    "bad",
    [{"qr_payload": "票-1"}, {"qr_payload": ""}, {"waiting_ahead": -1}, {"qr_payload": "a\nb"}],
)
def test_invalid_ticket_is_refused(bad: dict[str, object]) -> None:
    """Non-ASCII QR payloads would be sent as UTF-8 by python-escpos: refuse them early."""
    with pytest.raises(ValueError):
        ticket(**bad)


# --------------------------------------------------------------------------- interpreter


def test_interpreter_reads_rendered_ticket() -> None:
    """The sim sees the same text, sizes, alignment and QR payload the driver meant."""
    interp = EscPosInterpreter()
    cuts = interp.feed(render_ticket(ticket()))
    assert len(cuts) == 1
    blocks = cuts[0].blocks
    lines = {b.text: b for b in blocks if isinstance(b, TextLine)}
    assert lines["A001"].runs[0].width == 4 and lines["A001"].runs[0].height == 4
    assert lines["户籍业务"].align == 1
    assert [b.payload for b in blocks if isinstance(b, QrBlock)] == [b"T-20240501-A001"]
    assert interp.unknown_commands == 0


def test_interpreter_chinese_mode_off_decodes_single_byte() -> None:
    """Without FS & the same bytes are not Chinese: the sim shows what a printer would."""
    interp = EscPosInterpreter()
    interp.feed(b"\x1b\x40" + "户".encode("gb18030") + b"\n")
    assert interp.blocks and isinstance(interp.blocks[0], TextLine)
    assert interp.blocks[0].text != "户"


def test_interpreter_counts_and_skips_unknown_commands() -> None:
    """Garbage commands are counted; the text after them still prints."""
    interp = EscPosInterpreter()
    interp.feed(b"\x1b\x40\x1c\x26\x1b\xff\x1d\xfe\x07" + "你好".encode("gb18030") + b"\n")
    assert interp.unknown_commands == 3
    assert [b.text for b in interp.blocks if isinstance(b, TextLine)] == ["你好"]


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_interpreter_never_raises_on_garbage(data: bytes) -> None:
    """Any byte string is survivable."""
    EscPosInterpreter().feed(data)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_interpreter_chunking_does_not_change_result(data: bytes, cuts: list[int]) -> None:
    """Bytes split across reads (pty, TCP) give the same page as one read."""
    whole = EscPosInterpreter()
    whole_events = whole.feed(data)
    pieces = EscPosInterpreter()
    events = []
    last = 0
    for at in sorted(set(cuts)):
        events += pieces.feed(data[last:at])
        last = max(last, at)
    events += pieces.feed(data[last:])
    assert events == whole_events
    assert pieces.blocks == whole.blocks
    assert pieces.unknown_commands == whole.unknown_commands


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_sim_answers_status_whatever_the_stream(data: bytes) -> None:
    """A status request after garbage (even a half command) is answered, with a valid byte."""
    with tempfile.TemporaryDirectory() as out:
        sim = EscPosSim(None, out)
        sim.set_paper("near_end")
        replies: list[bytes] = []
        flt = RealtimeFilter()
        stream = data + b"\x10\x04\x04"
        for i in range(0, len(stream), 7):
            sim.receive(stream[i : i + 7], flt, replies.append)
    assert replies and replies[-1] == b"\x1e"
    for r in replies:
        check_status_byte(r[0])
