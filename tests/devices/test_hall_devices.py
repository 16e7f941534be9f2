"""The whole hall through its real drivers and byte-compatible simulators on ptys.

Swipe → ticket → printed PNG whose QR decodes → window looks the visitor up →
call → LED text read back → pad key → evaluation stored; and the faults a hall
meets: paper out, a device unplugged mid-day.
"""

from __future__ import annotations

import asyncio
import subprocess
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hallctl import auth, config
from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.demo import DEMO_TOML

Predicate = Callable[[ev.Event], bool]


class Watch:
    """Collects bus events so a test can wait for one instead of sleeping."""

    def __init__(self, hall: Hall) -> None:
        self.events: list[ev.Event] = []
        self._changed = asyncio.Event()
        self.sub = hall.bus.subscribe("test.watch", self._on)

    def _on(self, e: ev.Event) -> None:
        self.events.append(e)
        self._changed.set()

    async def wait(self, pred: Predicate, timeout: float = 10.0) -> ev.Event:
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for e in self.events[seen:]:
                    if pred(e):
                        return e
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()


ALL_KINDS = ("idcard", "printer", "led_bus", "evalpad", "badge", "modbus_sensor")


def hall_config(
    tmp: Path, *, keep_kinds: tuple[str, ...] = ALL_KINDS, queue: dict[str, Any] | None = None
) -> config.Config:
    raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
    raw.setdefault("queue", {}).update(
        {"recall_min_gap_s": 0, "require_sign_in": False, "call_next_unstarted": "finish", **(queue or {})}
    )
    raw["hall"]["id"] = "devtest"
    raw["store"] = {"path": str(tmp / "hall.db")}
    raw["api"] = {"port": 0}
    raw["mqtt"] = {"embedded_port": 0}  # never 1883: a system Mosquitto or a parallel run may hold it
    raw["device"] = [d for d in raw["device"] if d["kind"] in keep_kinds]
    kept = {d["id"] for d in raw["device"]}
    for w in raw["window"]:
        for key in ("led", "pad", "badge_reader"):
            if w.get(key) not in kept:
                w.pop(key, None)
                if key == "led":
                    w.pop("led_address", None)
    if "modbus_sensor" not in keep_kinds:
        raw.pop("sensor", None)
        raw.pop("climate_zone", None)
        raw.pop("climate_unit", None)  # the zones' air conditioners go with them
    return config.parse(raw)


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(hall_config(tmp_path), state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def client(hall: Hall, role: str, windows: tuple[int, ...] = ()) -> httpx.AsyncClient:
    token = await auth.create_token(hall.store, role, windows)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{hall.api.port}", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )


async def device_state(watch: Watch, hall: Hall, device: str, state: str, timeout: float = 10.0) -> None:
    current = hall.service.devices.get(device)
    if current is not None and current.state == state:
        return
    await watch.wait(lambda e: isinstance(e, ev.DeviceState) and e.device == device and e.state == state, timeout)


def zbar(png: Path) -> str:
    out = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


async def test_swipe_print_lookup_call_display_evaluate(hall: Hall) -> None:
    """A visitor's whole path through real drivers: every step lands where the next one reads it."""
    from drivers.sim.idcard import SAMPLE_CARDS

    watch = Watch(hall)
    for dev in ("idr-k1", "prn-k1", "led-floor1", "pad1"):
        await device_state(watch, hall, dev, "ok")
    kiosk, window1 = await client(hall, "kiosk"), await client(hall, "window", (1,))
    card = SAMPLE_CARDS["young"]
    hall.sims["idr-k1"].present(card)
    read = await watch.wait(lambda e: isinstance(e, ev.CardRead) and e.kiosk == "k1")
    assert isinstance(read, ev.CardRead)
    assert read.holder == card.masked_name and card.name not in read.holder

    r = await kiosk.post("/api/v1/tickets", json={"offer": read.offer, "category": "A"})
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["holder"] == card.masked_name
    await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed")
    printed = hall.sims["prn-k1"].tickets
    assert len(printed) == 1
    assert ticket["number"] in printed[0].text_lines
    assert "便民服务" in printed[0].text_lines
    qr = zbar(Path(printed[0].png_path))
    assert qr == ticket["qr"]

    r = await window1.get(f"/api/v1/tickets/by-qr/{qr}")
    assert r.status_code == 200, r.text
    assert r.json()["holder"]["name"] == card.name
    assert r.json()["holder"]["id_number"] == card.id_number

    r = await window1.post("/api/v1/windows/1/call-next")
    assert r.json()["ticket"]["number"] == ticket["number"]
    led = hall.sims["led-floor1"]
    await watch.wait(lambda e: isinstance(e, ev.TicketCalled))
    await hall.bus.drain()
    assert led.screen(1).text == f"请{ticket['number']}号到1号窗口"

    r = await window1.post("/api/v1/windows/1/finish")
    assert r.status_code == 200
    pad = hall.sims["pad1"]
    await hall.bus.drain()  # the pad handler returns once the pad acknowledged the prompt
    assert pad.prompt is not None and pad.prompt[1] == ticket["number"]
    pad.press(4)
    rec = await watch.wait(lambda e: isinstance(e, ev.EvaluationRecorded))
    assert isinstance(rec, ev.EvaluationRecorded)
    assert (rec.ticket_id, rec.level, rec.window, rec.channel) == (ticket["id"], 4, 1, "pad")
    stats = (await window1.get("/api/v1/stats")).json()
    assert stats["total"]["evaluations"] == 1 and stats["total"]["satisfaction"] == 1.0
    for c in (kiosk, window1):
        await c.aclose()


async def test_paper_out_keeps_ticket_and_reprints(hall: Hall) -> None:
    """Out of paper: the ticket is still issued, the kiosk is told, the printer shows it, reprint works."""
    from drivers.sim.idcard import SAMPLE_CARDS

    watch = Watch(hall)
    await device_state(watch, hall, "prn-k2", "ok")
    printer = hall.sims["prn-k2"]
    printer.set_paper("out")
    hall.sims["idr-k2"].present(SAMPLE_CARDS["elderly"])  # k2 offers one category: issues at once
    notice = await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.kiosk == "k2")
    assert isinstance(notice, ev.KioskNotice)
    assert notice.code == "printer_paper_out" and notice.number == "D001"
    assert "导办台" in notice.message
    await device_state(watch, hall, "prn-k2", "error")
    assert hall.service.devices["prn-k2"].detail == "paper_out"
    assert printer.tickets == []
    t = hall.service._q.find_number("D001")
    assert t is not None and t.state == "waiting" and t.priority == "green"

    printer.set_paper("ok")
    guide = await client(hall, "guide")
    r = await guide.post(f"/api/v1/tickets/{t.id}/reprint", json={})
    assert r.status_code == 202, r.text
    await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed")
    assert len(printer.tickets) == 1 and "D001" in printer.tickets[0].text_lines
    await guide.aclose()


async def test_unplugged_display_goes_offline_queue_keeps_serving_and_recovers(hall: Hall) -> None:
    """Unplugging the LED bus mid-day: state says offline, calls still work, it comes back by itself."""
    watch = Watch(hall)
    await device_state(watch, hall, "led-floor1", "ok")
    kiosk, window2 = await client(hall, "kiosk"), await client(hall, "window", (2,))
    led = hall.sims["led-floor1"]
    led.unplug()
    await device_state(watch, hall, "led-floor1", "offline")
    assert (await kiosk.post("/api/v1/tickets", json={"category": "A"})).status_code == 201
    r = await window2.post("/api/v1/windows/2/call-next")
    assert r.status_code == 200 and r.json()["ticket"]["number"] == "A001"
    health = (await kiosk.get("/api/v1/health")).json()
    assert health["status"] == "degraded" and health["devices"]["led-floor1"]["state"] == "offline"
    led.plug()
    await device_state(watch, hall, "led-floor1", "ok")
    await window2.post("/api/v1/windows/2/recall")
    await watch.wait(lambda e: isinstance(e, ev.TicketCalled) and e.recall == 1)
    await hall.bus.drain()
    assert led.screen(2).text == "请A001号到2号窗口"
    for c in (kiosk, window2):
        await c.aclose()


async def test_badge_signs_staff_in_and_out_unknown_badge_refused(hall: Hall) -> None:
    """亮牌上岗: a known badge on window 3's real PC/SC reader signs its owner in; taking it away signs out."""
    from drivers.sim.badge import VirtualBadge

    watch = Watch(hall)
    await device_state(watch, hall, "badge3", "ok", timeout=20)
    port = hall.sims["badge3"].port
    stranger = VirtualBadge(bytes.fromhex("DEADBEEF"), port=port)
    await stranger.insert()
    alert = await watch.wait(lambda e: isinstance(e, ev.Alert) and e.alert == "unknown_badge")
    assert isinstance(alert, ev.Alert) and alert.subject == "3"
    assert hall.service._q.window(3).staff is None
    await stranger.remove()
    badge = VirtualBadge(bytes.fromhex("04A1B2C3"), port=port)
    await badge.insert()
    signed = await watch.wait(lambda e: isinstance(e, ev.StaffSignedIn))
    assert isinstance(signed, ev.StaffSignedIn)
    assert (signed.window, signed.staff, signed.staff_name) == (3, "0231", "李明")
    state = hall.service.window_state(3)
    assert state.staff == "0231" and state.staff_name == "李明"
    await badge.remove()
    out = await watch.wait(lambda e: isinstance(e, ev.StaffSignedOut))
    assert isinstance(out, ev.StaffSignedOut) and out.window == 3
    assert hall.service._q.window(3).staff is None


async def test_modbus_readings_feed_sensor_state_climate_and_alert(hall: Hall) -> None:
    """A floor's Modbus sensor drives its sensor state, its climate zone's action and the comfort alert."""
    watch = Watch(hall)
    await device_state(watch, hall, "th-floor1", "ok", timeout=20)
    hall.sims["th-floor1"].set(30.5, 54.6)
    reading = await watch.wait(
        lambda e: isinstance(e, ev.SensorState) and e.sensor == "floor1" and e.temperature == 30.5, timeout=20
    )
    assert isinstance(reading, ev.SensorState) and reading.humidity == 54.6
    climate = await watch.wait(lambda e: isinstance(e, ev.ClimateState) and e.zone == "floor1" and e.current == 30.5)
    # The zone wants to cool; its unit (the demo's VRF) may still rest out its minimum off time after start.
    assert isinstance(climate, ev.ClimateState)
    assert climate.reason.startswith("cooling: 30.5 °C"), climate.reason
    alert = await watch.wait(lambda e: isinstance(e, ev.Alert) and e.alert == "climate_out_of_band")
    assert isinstance(alert, ev.Alert) and alert.subject == "floor1"
    history = await hall.service.readings(reading.at.replace(year=reading.at.year - 1))
    assert any(r.sensor == "floor1" and r.temperature_last == 30.5 for r in history)


async def test_logs_never_carry_full_name_id_number_or_address(hall: Hall, caplog: pytest.LogCaptureFixture) -> None:
    """个人信息保护法: a whole visit, logged at DEBUG by every logger, never writes the card's personal data."""
    import logging

    from drivers.sim.idcard import SAMPLE_CARDS

    caplog.set_level(logging.DEBUG)
    watch = Watch(hall)
    for dev in ("idr-k1", "prn-k1", "pad1"):
        await device_state(watch, hall, dev, "ok")
    card = SAMPLE_CARDS["elderly"]
    kiosk, window1 = await client(hall, "kiosk"), await client(hall, "window", (1,))
    reader = hall.sims["idr-k1"]
    reader.present(card)
    read = await watch.wait(lambda e: isinstance(e, ev.CardRead))
    assert isinstance(read, ev.CardRead)
    reader.fail_next_read()  # a read error while the card is on the reader is logged too
    ticket = (await kiosk.post("/api/v1/tickets", json={"offer": read.offer, "category": "A"})).json()
    await watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed")
    assert (await window1.get(f"/api/v1/tickets/by-qr/{ticket['qr']}")).json()["holder"]["name"] == card.name
    await window1.post("/api/v1/windows/1/call-next")
    await window1.post("/api/v1/windows/1/finish")
    await hall.bus.drain()
    hall.sims["pad1"].press(2)  # a bad rating raises an alert, which is logged
    await watch.wait(lambda e: isinstance(e, ev.EvaluationRecorded))
    # The per-ID limit's refusal explains itself without naming the person.
    from hallctl.engine import Holder
    from hallctl.errors import Refused

    holder = Holder(name=card.name, id_number=card.id_number, birth=card.birth, address=card.address)
    with pytest.raises(Refused) as refused:
        for _ in range(hall.cfg.queue.per_id_daily_limit):
            await hall.service.issue("A", channel="kiosk", kiosk="k1", holder=holder)
    assert refused.value.code == "id_limit_reached" and card.name not in refused.value.message
    await hall.bus.drain()
    secrets_ = (card.name, card.id_number, card.address, card.id_number[6:14])
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert len(logged) > 5  # the visit was logged at all
    for line in logged:
        for secret in secrets_:
            assert secret not in line, f"personal data in log line: {line[:80]}"
    for c in (kiosk, window1):
        await c.aclose()


@pytest.mark.parametrize(("dedupe", "reads"), [(0.0, 2), (600.0, 1)])
async def test_the_configured_card_dedupe_window_is_honoured(tmp_path: Path, dedupe: float, reads: int) -> None:
    """queue.card_dedupe_seconds reaches the reader: the same card again is a new swipe only outside the window."""
    from drivers.sim.idcard import SAMPLE_CARDS

    h = Hall(
        hall_config(tmp_path, keep_kinds=("idcard", "printer"), queue={"card_dedupe_seconds": dedupe}),
        state_dir=tmp_path,
    )
    await h.start()
    try:
        watch = Watch(h)
        await device_state(watch, h, "idr-k1", "ok")
        sim = h.sims["idr-k1"]
        card = SAMPLE_CARDS["young"]
        sim.present(card)
        await watch.wait(lambda e: isinstance(e, ev.CardRead) and e.kiosk == "k1")
        sim.remove()
        sim.present(card)
        if reads == 2:
            await watch.wait(
                lambda e: isinstance(e, ev.CardRead) and sum(isinstance(x, ev.CardRead) for x in watch.events) == 2
            )
        else:
            from drivers.idcard import Command

            async with asyncio.timeout(10):  # the reader read the card again, and reported nothing
                await sim.wait_received(Command.READ, 2)
            await h.bus.drain()
        assert sum(1 for e in watch.events if isinstance(e, ev.CardRead)) == reads
    finally:
        await h.stop()


async def test_printed_ticket_is_the_issue_decisions_job_and_the_printer_never_asks_the_service(
    hall: Hall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slip shows what POST /tickets answered (waiting count, QR token); the printer sink reads no ticket."""
    asked: list[str] = []

    async def no_lookup(ticket_id: str) -> Any:
        asked.append(ticket_id)
        raise AssertionError("the printer sink must not call back upstream for the ticket")

    monkeypatch.setattr(hall.service, "ticket", no_lookup)
    watch = Watch(hall)
    await device_state(watch, hall, "prn-k1", "ok")
    kiosk = await client(hall, "kiosk")
    answers = []
    for _ in range(2):
        r = await kiosk.post("/api/v1/tickets", json={"category": "A", "kiosk": "k1"})
        assert r.status_code == 201, r.text
        answers.append(r.json())
    await watch.wait(
        lambda e: (
            isinstance(e, ev.KioskNotice)
            and sum(isinstance(x, ev.KioskNotice) and x.code == "printed" for x in watch.events) == 2
        )
    )
    printed = hall.sims["prn-k1"].tickets
    assert [a["waiting_ahead"] for a in answers] == [0, 1]
    for answer, slip in zip(answers, printed, strict=True):
        assert answer["number"] in slip.text_lines
        assert f"您前面还有 {answer['waiting_ahead']} 人等候" in slip.text_lines
        assert zbar(Path(slip.png_path)) == answer["qr"]
    assert asked == []
    await kiosk.aclose()
