"""Printers that never answer status queries, and tickets that could not be printed.

A printer with ``options = { status = "none" }`` prints the kiosk's ticket through the
real driver into a simulator that never answers ``DLE EOT``; a ticket whose printer was
unplugged is marked ``print_failed`` over the API until a reprint prints it.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall
from tests.devices.test_hall_devices import Watch, client, device_state, hall_config, zbar


def blind_config(tmp: Path) -> config.Config:
    cfg = hall_config(tmp, keep_kinds=("idcard", "printer"))
    devices = tuple(
        d.model_copy(update={"options": {**d.options, "status": "none"}}) if d.id == "prn-k1" else d for d in cfg.device
    )
    return cfg.model_copy(update={"device": devices})


@pytest.fixture
async def blind_hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(blind_config(tmp_path), state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_status_none_printer_prints_the_kiosk_ticket(blind_hall: Hall) -> None:
    """The simulator never answers DLE EOT; the ticket still comes out, and the device shows ``unknown``."""
    hall = blind_hall
    sim = hall.sims["prn-k1"]
    assert sim.answers_status is False
    watch = Watch(hall)
    await device_state(watch, hall, "prn-k1", "unknown")
    kiosk = await client(hall, "kiosk")
    r = await kiosk.post("/api/v1/tickets", json={"category": "A", "kiosk": "k1"})
    assert r.status_code == 201, r.text
    answer = r.json()
    await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed" and e.number == answer["number"])
    await sim.wait_tickets(1)
    slip = sim.tickets[0]
    assert answer["number"] in slip.text_lines
    assert zbar(Path(slip.png_path)) == answer["qr"]
    assert sim.status_requests == []
    got = await kiosk.get(f"/api/v1/tickets/{answer['id']}")
    assert got.json()["print_failed"] is False
    health = await kiosk.get("/api/v1/health")
    assert health.json()["devices"]["prn-k1"]["state"] == "unknown"
    assert health.json()["status"] == "ok"  # unknown by configuration is not a degraded hall
    await kiosk.aclose()


async def test_unplugged_printer_marks_ticket_and_reprint_clears_it(blind_hall: Hall) -> None:
    """Unplugged: 201, but the ticket says print_failed (ticket view, window queue, event log); a reprint
    after plugging back prints it and clears the mark."""
    hall = blind_hall
    sim = hall.sims["prn-k1"]
    watch = Watch(hall)
    await device_state(watch, hall, "prn-k1", "unknown")
    sim.unplug()
    await device_state(watch, hall, "prn-k1", "offline")
    kiosk, guide, window1 = await client(hall, "kiosk"), await client(hall, "guide"), await client(hall, "window", (1,))
    r = await kiosk.post("/api/v1/tickets", json={"category": "A", "kiosk": "k1"})
    assert r.status_code == 201, r.text
    tid, number = r.json()["id"], r.json()["number"]
    notice = await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.number == number)
    assert isinstance(notice, ev.KioskNotice) and notice.code == "printer_offline"
    await watch.wait(lambda e: isinstance(e, ev.QueueState) and hall.service._q.tickets[tid].print_failed)
    assert (await guide.get(f"/api/v1/tickets/{tid}")).json()["print_failed"] is True
    queue = (await window1.get("/api/v1/windows/1/queue")).json()
    assert [t["print_failed"] for t in queue["waiting"] if t["id"] == tid] == [True]
    assert sim.tickets == []

    sim.plug()
    await device_state(watch, hall, "prn-k1", "unknown")
    r = await window1.post(f"/api/v1/tickets/{tid}/reprint", json={})
    assert r.status_code == 202, r.text
    await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed" and e.number == number)
    await watch.wait(lambda e: isinstance(e, ev.QueueState) and not hall.service._q.tickets[tid].print_failed)
    await sim.wait_tickets(1)
    assert number in sim.tickets[0].text_lines
    assert (await guide.get(f"/api/v1/tickets/{tid}")).json()["print_failed"] is False
    for c in (kiosk, guide, window1):
        await c.aclose()
    kinds = [e.kind for e in await hall.service.ticket_history(tid)]
    assert kinds.index("print_failed") < kinds.index("reprinted") < kinds.index("print_recovered")
    saved = await hall.store.ticket(tid)
    assert saved is not None and saved.print_failed is False


def test_printer_status_option_is_checked() -> None:
    """A typo in the status mode names the key and the reason at start-up; non-printers may not set it."""
    raw: dict[str, Any] = tomllib.loads(
        '[hall]\nid = "h"\nname = "h"\n[[category]]\nprefix = "A"\nname = "a"\n'
        '[[device]]\nid = "p1"\nkind = "printer"\nsimulate = true\noptions = { status = "off" }\n'
    )
    with pytest.raises(config.ConfigError, match=r"options\.status must be one of 'query', 'none'"):
        config.parse(raw)
    raw["device"][0]["options"]["status"] = "none"
    assert config.parse(raw).device[0].printer_status == "none"
    raw["device"][0]["kind"] = "led_bus"
    with pytest.raises(config.ConfigError, match="printer option"):
        config.parse(raw)
