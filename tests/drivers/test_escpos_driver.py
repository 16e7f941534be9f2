"""The real EscPosPrinter over a real pty (pyserial) and TCP, against the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.base import Health, HealthState
from drivers.errors import DeviceOffline
from drivers.escpos import (
    CoverOpen,
    CutterError,
    EscPosPrinter,
    PaperOut,
    PrinterNotReady,
    PrinterUnreachable,
    PrintIncomplete,
    TicketPrint,
    render_ticket,
)
from drivers.reconnect import Backoff
from drivers.sim.escpos import EscPosSim

FAST = Backoff(initial=0.05, maximum=0.2)

needs_zbar = pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools not installed")


def ticket(number: str = "A012", payload: str = "T-20240501-A012") -> TicketPrint:
    return TicketPrint(
        hall_name="西城区政务服务中心",
        category_name="不动产登记",
        number=number,
        waiting_ahead=4,
        issued_at=dt.datetime(2024, 5, 1, 9, 15, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        qr_payload=payload,
        holder_masked="张*丰",
        footer="请留意叫号",
        window_hint="请到 3 号窗口办理",
        priority_label="绿色通道",
    )


class HealthWatch:
    """Collects health changes; tests wait on them instead of sleeping."""

    def __init__(self) -> None:
        self.history: list[Health] = []
        self._changed = asyncio.Event()

    def __call__(self, health: Health) -> None:
        self.history.append(health)
        self._changed.set()

    async def until(self, state: HealthState, detail: str | None = None) -> Health:
        async with asyncio.timeout(5):
            while True:
                if self.history:
                    last = self.history[-1]
                    if last.state == state and (detail is None or last.detail == detail):
                        return last
                self._changed.clear()
                await self._changed.wait()


async def zbar(png: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "zbarimg",
        "--raw",
        "-q",
        str(png),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(10):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, f"zbarimg found no code in {png}"
    return out.decode().strip()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[EscPosSim]:
    s = EscPosSim(tmp_path / "ttyPRN0", tmp_path / "out")
    await s.start()
    yield s
    await s.close()


@pytest.fixture
def watch() -> HealthWatch:
    return HealthWatch()


def make_printer(
    url: str,
    watch: HealthWatch,
    *,
    poll_interval: float = 0.05,
    chunk_size: int = 256,
    chunk_pause: float = 0.005,
) -> EscPosPrinter:
    return EscPosPrinter(
        "prn1",
        url,
        on_health=watch,
        backoff=FAST,
        status_timeout=0.2,
        poll_interval=poll_interval,
        chunk_size=chunk_size,
        chunk_pause=chunk_pause,
    )


@pytest.fixture
async def printer(sim: EscPosSim, watch: HealthWatch) -> AsyncIterator[EscPosPrinter]:
    assert sim.port is not None
    p = make_printer(sim.port.path, watch)
    async with p:
        await watch.until("ok")
        yield p


@needs_zbar
async def test_printed_ticket_scans_and_reads(printer: EscPosPrinter, sim: EscPosSim) -> None:
    """A ticket comes out as a PNG whose QR decodes to the payload and whose text is right."""
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1
    t = sim.tickets[0]
    assert t.png_path.exists()
    assert await zbar(t.png_path) == "T-20240501-A012"
    assert t.qr_payloads == ["T-20240501-A012"]
    assert "不动产登记" in t.text_lines
    assert "A012" in t.text_lines
    assert "取号人：张*丰" in t.text_lines
    assert "取号时间：2024-05-01 09:15:02" in t.text_lines
    assert sim.unknown_commands == 0
    assert printer.health() == Health("ok", "")


async def test_status_checked_before_and_after_printing(sim: EscPosSim, watch: HealthWatch) -> None:
    """Status is asked before the ticket and after the cut; bytes are render_ticket's."""
    assert sim.port is not None
    t = ticket()
    async with make_printer(sim.port.path, watch, poll_interval=60) as p:  # no poll in between
        await watch.until("ok")
        sim.events.clear()
        await p.print_ticket(t)
    round_ = [f"status {n}" for n in (1, 2, 3, 4)]
    assert sim.events == [*round_, "cut", *round_]
    assert sim.tickets[0].raw.endswith(render_ticket(t))


async def test_paper_out_refuses_without_sending(printer: EscPosPrinter, sim: EscPosSim, watch: HealthWatch) -> None:
    """Paper out: PaperOut raised, not a byte of the ticket sent, health error paper_out."""
    sim.set_paper("out")
    before = sim.stream_bytes
    with pytest.raises(PaperOut) as info:
        await printer.print_ticket(ticket())
    assert isinstance(info.value, PrinterNotReady)
    assert info.value.reason == "paper_out"
    assert sim.stream_bytes == before
    assert sim.tickets == []
    assert printer.health() == Health("error", "paper_out")

    sim.set_paper("ok")
    await watch.until("ok")
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1


async def test_idle_printer_reports_paper_out(printer: EscPosPrinter, sim: EscPosSim, watch: HealthWatch) -> None:
    """Nobody printing: the poll still shows paper out on health, and recovery after."""
    sim.set_paper("out")
    await watch.until("error", "paper_out")
    sim.set_paper("ok")
    await watch.until("ok")


async def test_paper_near_end_prints_and_degrades(printer: EscPosPrinter, sim: EscPosSim) -> None:
    """Near end: the ticket prints, health says degraded so staff change the roll."""
    sim.set_paper("near_end")
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1
    assert printer.health() == Health("degraded", "paper_near_end")
    status = await printer.status()
    assert status.paper_near_end and not status.paper_out


async def test_cover_open_refuses(printer: EscPosPrinter, sim: EscPosSim) -> None:
    """Cover open: CoverOpen, nothing sent, health error cover_open."""
    sim.set_cover_open(True)
    before = sim.stream_bytes
    with pytest.raises(CoverOpen) as info:
        await printer.print_ticket(ticket())
    assert info.value.reason == "cover_open"
    assert sim.stream_bytes == before
    assert printer.health() == Health("error", "cover_open")


async def test_paper_runs_out_mid_ticket(printer: EscPosPrinter, sim: EscPosSim) -> None:
    """Paper ends half-way: PrintIncomplete(paper_out), no whole ticket, health error."""
    sim.run_out_of_paper_after(120)
    with pytest.raises(PrintIncomplete) as info:
        await printer.print_ticket(ticket())
    assert info.value.reason == "paper_out"
    assert sim.tickets == []
    assert len(sim.torn_pages) == 1
    assert printer.health() == Health("error", "paper_out")


async def test_silent_printer_is_offline_then_recovers(
    printer: EscPosPrinter, sim: EscPosSim, watch: HealthWatch
) -> None:
    """No status reply: PrinterUnreachable(offline), nothing sent; replies again → ok."""
    sim.go_silent(True)
    before = sim.stream_bytes
    with pytest.raises(PrinterUnreachable) as info:
        await printer.print_ticket(ticket())
    assert isinstance(info.value, DeviceOffline)
    assert info.value.reason == "offline"
    assert sim.stream_bytes == before
    assert printer.health().state == "offline"
    sim.go_silent(False)
    await watch.until("ok")
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1


async def test_unplug_and_plug_heal_by_themselves(printer: EscPosPrinter, sim: EscPosSim, watch: HealthWatch) -> None:
    """USB adapter pulled: offline, printing refused; put back: ok again, printing works."""
    sim.unplug()
    await watch.until("offline")
    with pytest.raises(PrinterUnreachable):
        await printer.print_ticket(ticket())
    sim.plug()
    await watch.until("ok")
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1
    assert printer.counters["reconnects"] >= 1


async def test_printer_absent_at_start_comes_up_later(tmp_path: Path, watch: HealthWatch) -> None:
    """Kiosk started before its printer is plugged: offline, then ok without restart."""
    sim = EscPosSim(tmp_path / "ttyPRN9", tmp_path / "out")
    async with make_printer(str(tmp_path / "ttyPRN9"), watch):
        await watch.until("offline")
        async with sim:
            await watch.until("ok")


async def test_one_print_at_a_time(tmp_path: Path, sim: EscPosSim, watch: HealthWatch) -> None:
    """Two kiosk requests at once give two whole tickets, never interleaved bytes."""
    assert sim.port is not None
    async with make_printer(sim.port.path, watch, chunk_size=16, chunk_pause=0.001) as p:
        await watch.until("ok")
        await asyncio.gather(p.print_ticket(ticket("A001", "T-1")), p.print_ticket(ticket("A002", "T-2")))
    assert sorted(t.qr_payloads[0] for t in sim.tickets) == ["T-1", "T-2"]
    for t in sim.tickets:
        assert len(t.qr_payloads) == 1
        number = "A001" if t.qr_payloads == ["T-1"] else "A002"
        assert number in t.text_lines
    assert sim.unknown_commands == 0


async def test_cutter_error_and_recover(printer: EscPosPrinter, sim: EscPosSim, watch: HealthWatch) -> None:
    """Cutter jam refuses printing; DLE ENQ recovery clears it and printing resumes."""
    sim.set_cutter_error(True)
    with pytest.raises(CutterError):
        await printer.print_ticket(ticket())
    assert printer.health() == Health("error", "cutter_error")
    status = await printer.recover()
    assert status.ready
    assert sim.recover_requests == [2]
    assert printer.health() == Health("ok", "")
    await printer.print_ticket(ticket())
    assert len(sim.tickets) == 1


@needs_zbar
async def test_network_printer_over_tcp(tmp_path: Path, watch: HealthWatch) -> None:
    """tcp://host:9100-style printers work the same way."""
    sim = EscPosSim(None, tmp_path / "out")
    port = await sim.start_tcp()
    try:
        async with make_printer(f"tcp://127.0.0.1:{port}", watch) as p:
            await watch.until("ok")
            await p.print_ticket(ticket("B007", "T-20240501-B007"))
            sim.set_paper("out")
            with pytest.raises(PaperOut):
                await p.print_ticket(ticket())
    finally:
        await sim.close()
    assert len(sim.tickets) == 1
    assert "B007" in sim.tickets[0].text_lines
    assert await zbar(sim.tickets[0].png_path) == "T-20240501-B007"
