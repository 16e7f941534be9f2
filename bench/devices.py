"""Software overhead from an ID-card swipe to the printer's first byte.

The clock starts when the reader simulator has written the last byte of the
card-data frame (the moment real hardware would finish sending it) and stops
when the printer simulator receives its first byte. Everything between is
hallctl: frame decode, the ticket's durable commit (fsync), the bus, the
ticket layout and the printer's status query. The figure is shown beside the
serial wire time the first byte really waits for: the card-data frame at the
reader's 115200 baud (8N1), measured from the frame the simulator sent. The ratio
against it is the figure (below 1: the software adds less than that wire takes).
The ratio against the whole ticket's wire time (card frame plus the ticket at
9600) is printed beside it, but the first byte never waits for the ticket's own
bytes, so that one flatters the software. Both are recorded (bench/figures.py).

Run: .venv/bin/python bench/devices.py [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from drivers.idcard import IdCard  # noqa: E402
from drivers.idnumber import check_char  # noqa: E402
from drivers.sim.idcard import make_card  # noqa: E402
from hallctl import config  # noqa: E402
from hallctl import events as ev  # noqa: E402
from hallctl.daemon import Hall  # noqa: E402
from hallctl.demo import DEMO_TOML  # noqa: E402


def bench_config(tmp: Path) -> config.Config:
    raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
    raw["store"] = {"path": str(tmp / "hall.db")}
    raw["api"] = {"port": 0}
    raw["mqtt"] = {"embedded_port": 0}
    raw["queue"] = {"per_id_daily_limit": 100, "card_dedupe_seconds": 0}
    raw["device"] = [d for d in raw["device"] if d["id"] in ("idr-k2", "prn-k2")]
    for w in raw["window"]:
        for key in ("led", "led_address", "pad", "badge_reader"):
            w.pop(key, None)
    raw["kiosk"] = [k for k in raw["kiosk"] if k["id"] == "k2"]
    raw.pop("guide", None)  # its desk kiosk (and printer) is not in this hall
    raw.pop("sensor", None)
    raw.pop("climate_zone", None)
    raw.pop("climate_unit", None)  # the zones' air conditioners go with them
    return config.parse(raw)


def card(i: int) -> IdCard:
    first17 = f"11010519800101{i:03d}"
    return make_card(f"测试{chr(0x4E00 + i)}名", first17 + check_char(first17))


BENCH = "devices"
DEFAULT_BAUD = {"idcard": 115200, "printer": 9600}  # hallctl.devices.manager's defaults


def wire_s(nbytes: int, baud: int) -> float:
    return nbytes * 10 / baud  # 8N1: start + 8 data + stop bits


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = bench_config(Path(tmp))
        baud = {d.id: d.baudrate or DEFAULT_BAUD[d.kind] for d in cfg.device}
        card_baud, printer_baud = baud["idr-k2"], baud["prn-k2"]
        hall = Hall(cfg, state_dir=Path(tmp))
        await hall.start()
        reader_sim = hall.sims["idr-k2"]
        printer_sim = hall.sims["prn-k2"]
        marks: dict[str, float] = {}
        frames: list[int] = []

        original_write = reader_sim.port.write

        def reader_write(data: bytes) -> None:
            original_write(data)
            if len(data) > 1000:  # the card-data frame
                marks["card_sent"] = time.perf_counter()
                frames.append(len(data))

        reader_sim.port.write = reader_write
        original_receive = printer_sim.receive

        def printer_receive(data: bytes, *args: Any) -> None:
            marks.setdefault("printer_first_byte", time.perf_counter())
            original_receive(data, *args)

        printer_sim.receive = printer_receive  # the pty callback looks the method up on each read
        printed, printer_ready = asyncio.Event(), asyncio.Event()

        def on_event(e: ev.Event) -> None:
            if isinstance(e, ev.KioskNotice) and e.code == "printed":
                printed.set()
            if isinstance(e, ev.DeviceState) and e.device == "prn-k2" and e.state == "ok":
                printer_ready.set()

        hall.bus.subscribe("bench.notice", on_event)
        if hall.service.devices["prn-k2"].state != "ok":
            await printer_ready.wait()
        overheads: list[float] = []
        ticket_bytes: list[int] = []
        for i in range(rounds):
            marks.clear()
            printed.clear()
            before = printer_sim.stream_bytes
            reader_sim.present(card(i))
            async with asyncio.timeout(30):
                await printed.wait()
            reader_sim.remove()
            overheads.append(marks["printer_first_byte"] - marks["card_sent"])
            ticket_bytes.append(printer_sim.stream_bytes - before)
        await hall.stop()

    card_frame = int(statistics.median(frames))
    ticket = int(statistics.median(ticket_bytes))
    card_wire = wire_s(card_frame, card_baud)
    whole_wire = card_wire + wire_s(ticket, printer_baud)
    p50 = statistics.median(overheads)
    p90 = sorted(overheads)[int(0.9 * (len(overheads) - 1))]
    print(f"swipe → printer first byte, software only ({rounds} swipes, durable commit included):")
    print(f"  p50 {p50 * 1000:.1f} ms   p90 {p90 * 1000:.1f} ms   max {max(overheads) * 1000:.1f} ms")
    print(f"wire time the first byte waits for: card frame {card_frame} B @{card_baud} = {card_wire * 1000:.0f} ms")
    print(f"  ratio software/card-frame wire: p50 {p50 / card_wire:.3f}   p90 {p90 / card_wire:.3f}   (the figure)")
    print(
        f"whole ticket's wire time: card frame + ticket {ticket} B @{printer_baud} = {whole_wire * 1000:.0f} ms"
        f"   ratio p50 {p50 / whole_wire:.3f}   (for comparison with earlier runs only)"
    )
    how = (
        f"{rounds} swipes, p90 {p90 * 1000:.1f} ms; card frame {card_frame} B @{card_baud} = {card_wire * 1000:.0f} ms"
    )
    figures.record(
        figures.Figure(BENCH, "swipe -> printer first byte, p50", round(p50 * 1000, 1), "ms", detail=how),
        figures.Figure(
            BENCH,
            "swipe -> first byte / card-frame wire time, p50",
            round(p50 / card_wire, 3),
            "ratio",
            1.0,
            "<=",
            detail=how,
        ),
        figures.Figure(
            BENCH,
            "swipe -> first byte / whole ticket's wire time, p50",
            round(p50 / whole_wire, 3),
            "ratio",
            detail=f"card frame + ticket {ticket} B @{printer_baud} = {whole_wire * 1000:.0f} ms (the old ratio)",
        ),
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
