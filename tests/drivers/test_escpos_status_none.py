"""Printers that never answer ``DLE EOT`` (status = "none"): they print, health is ``unknown``."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.escpos import EscPosPrinter, PrinterUnreachable
from drivers.sim.escpos import EscPosSim
from tests.drivers.test_escpos_driver import FAST, HealthWatch, ticket


def blind(url: str, watch: HealthWatch) -> EscPosPrinter:
    return EscPosPrinter(
        "prn1", url, on_health=watch, backoff=FAST, status_timeout=0.2, poll_interval=0.05, status_mode="none"
    )


async def test_silent_printer_prints_with_status_none(tmp_path: Path) -> None:
    """A serial printer that never answers: the ticket comes out, no DLE EOT is ever sent, health unknown."""
    watch = HealthWatch()
    async with EscPosSim(tmp_path / "ttyPRN0", tmp_path / "out", answers_status=False) as sim:
        assert sim.port is not None
        async with blind(sim.port.path, watch) as p:
            await watch.until("unknown")
            await p.print_ticket(ticket("A031", "T-31"))
            await p.print_ticket(ticket("A032", "T-32"))
            await sim.wait_tickets(2)
            assert p.health().state == "unknown"
            with pytest.raises(PrinterUnreachable):
                await p.status()
        assert [t.qr_payloads for t in sim.tickets] == [["T-31"], ["T-32"]]
        assert "A031" in sim.tickets[0].text_lines
        assert sim.status_requests == []
        assert sim.unknown_commands == 0


async def test_silent_printer_without_status_none_never_prints(tmp_path: Path) -> None:
    """The fault this mode is for: in the default mode the same printer is offline and prints nothing."""
    watch = HealthWatch()
    async with EscPosSim(tmp_path / "ttyPRN0", tmp_path / "out", answers_status=False) as sim:
        assert sim.port is not None
        p = EscPosPrinter("prn1", sim.port.path, on_health=watch, backoff=FAST, status_timeout=0.2, poll_interval=0.05)
        async with p:
            await watch.until("offline", "no status reply")
            with pytest.raises(PrinterUnreachable):
                await p.print_ticket(ticket())
        assert sim.tickets == []


async def test_network_printer_status_none_over_tcp_and_unplugged(tmp_path: Path) -> None:
    """tcp://…:9100 that never answers prints; a link that cannot be opened is still offline."""
    watch = HealthWatch()
    sim = EscPosSim(None, tmp_path / "out", answers_status=False)
    port = await sim.start_tcp()
    try:
        async with blind(f"tcp://127.0.0.1:{port}", watch) as p:
            await watch.until("unknown")
            await p.print_ticket(ticket("B007", "T-B007"))
            await sim.wait_tickets(1)
    finally:
        await sim.close()
    assert [t.qr_payloads for t in sim.tickets] == [["T-B007"]]
    assert sim.status_requests == []
    # Nothing listening on that port any more: offline, and printing is refused.
    watch2 = HealthWatch()
    async with blind(f"tcp://127.0.0.1:{port}", watch2) as p2:
        await watch2.until("offline")
        with pytest.raises(PrinterUnreachable):
            await p2.print_ticket(ticket())


async def test_status_none_serial_unplug_is_offline_and_heals(tmp_path: Path) -> None:
    """Unplugged adapter: offline and refused; plugged again: unknown and printing."""
    watch = HealthWatch()
    async with EscPosSim(tmp_path / "ttyPRN0", tmp_path / "out", answers_status=False) as sim:
        assert sim.port is not None
        async with blind(sim.port.path, watch) as p:
            await watch.until("unknown")
            sim.unplug()
            await watch.until("offline")
            with pytest.raises(PrinterUnreachable):
                await p.print_ticket(ticket())
            sim.plug()
            await watch.until("unknown")
            await p.print_ticket(ticket())
            await sim.wait_tickets(1)
        assert len(sim.tickets) == 1


def test_unknown_status_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="status_mode"):
        EscPosPrinter("prn1", "/dev/null", status_mode="maybe")  # type: ignore[arg-type]
