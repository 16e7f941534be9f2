"""Software overhead from an ID-card swipe to the printer's first byte.

The clock starts when the reader simulator has written the last byte of the
card-data frame (the moment real hardware would finish sending it) and stops
when the printer simulator receives its first byte. Everything between is
hallctl: frame decode, the ticket's durable commit (fsync), the bus, the
ticket layout and the printer's status query. The figure is shown beside the
serial wire time of the same bytes at the configured baud rates (card data at
115200, the ticket at 9600 8N1), as a ratio: below 1 means the software adds
less than the wires themselves take.

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

from drivers.idcard import IdCard
from drivers.idnumber import check_char
from drivers.sim.idcard import make_card
from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.demo import DEMO_TOML


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
    raw.pop("sensor", None)
    raw.pop("climate_zone", None)
    raw.pop("climate_unit", None)  # the zones' air conditioners go with them
    return config.parse(raw)


def card(i: int) -> IdCard:
    first17 = f"11010519800101{i:03d}"
    return make_card(f"测试{chr(0x4E00 + i)}名", first17 + check_char(first17))


def wire_s(nbytes: int, baud: int) -> float:
    return nbytes * 10 / baud  # 8N1: start + 8 data + stop bits


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hall = Hall(bench_config(Path(tmp)), state_dir=Path(tmp))
        await hall.start()
        reader_sim = hall.sims["idr-k2"]
        printer_sim = hall.sims["prn-k2"]
        marks: dict[str, float] = {}

        original_write = reader_sim.port.write

        def reader_write(data: bytes) -> None:
            original_write(data)
            if len(data) > 1000:  # the card-data frame
                marks["card_sent"] = time.perf_counter()

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

    card_frame = 1295
    wire = wire_s(card_frame, 115200) + wire_s(int(statistics.median(ticket_bytes)), 9600)
    p50 = statistics.median(overheads)
    p90 = sorted(overheads)[int(0.9 * (len(overheads) - 1))]
    print(f"swipe → printer first byte, software only ({rounds} swipes, durable commit included):")
    print(f"  p50 {p50 * 1000:.1f} ms   p90 {p90 * 1000:.1f} ms   max {max(overheads) * 1000:.1f} ms")
    print(
        f"wire time of the same bytes: card frame {card_frame} B @115200 + ticket "
        f"{int(statistics.median(ticket_bytes))} B @9600 = {wire * 1000:.0f} ms"
    )
    print(f"ratio software/wire: p50 {p50 / wire:.3f}   p90 {p90 / wire:.3f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
