"""The real LedBus over a real pty (opened by pyserial) against LedBusSim."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.base import Health
from drivers.errors import DeviceOffline, DeviceTimeout
from drivers.led import DisplayRejected, LedBus
from drivers.reconnect import Backoff
from drivers.sim.led import LedBusSim

FAST = Backoff(initial=0.05, maximum=0.2)


class HealthLog:
    """Records health changes and lets a test wait for one instead of sleeping."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, Health]] = []
        self._changed = asyncio.Event()

    def bus(self, health: Health) -> None:
        self.address(0, health)

    def address(self, address: int, health: Health) -> None:
        self.seen.append((address, health))
        self._changed.set()

    def last(self, address: int) -> Health | None:
        for addr, health in reversed(self.seen):
            if addr == address:
                return health
        return None

    async def wait_for(self, address: int, state: str) -> None:
        async with asyncio.timeout(5):
            while (last := self.last(address)) is None or last.state != state:
                self._changed.clear()
                await self._changed.wait()


@dataclasses.dataclass
class Rig:
    sim: LedBusSim
    bus: LedBus
    log: HealthLog


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, reply_delay: float = 0.0) -> AsyncIterator[Rig]:
    sim = LedBusSim(str(tmp_path / "ttyLED"), addresses=[1, 2, 3], reply_delay=reply_delay)
    sim.plug()
    log = HealthLog()
    bus = LedBus(
        "led-line-1",
        sim.path,
        on_health=log.bus,
        on_address_health=log.address,
        backoff=FAST,
    )
    task = asyncio.create_task(bus.run())
    try:
        await log.wait_for(0, "ok")
        yield Rig(sim, bus, log)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sim.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running(tmp_path) as r:
        yield r


async def test_show_call_lands_on_that_screen_only(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.bus.show_call(3, "A008", 3)
    screen = rig.sim.screen(3)
    assert screen.text == "请A008号到3号窗口"
    assert screen.last_call == ("A008", 3)
    assert rig.sim.screen(1).text == "" and rig.sim.screen(2).text == ""
    assert rig.bus.address_health(3) == Health("ok")


async def test_text_effect_brightness_and_clear(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.bus.show_text(2, "暂停服务", line=1, effect="blink")
        await rig.bus.set_brightness(2, 4)
        screen = rig.sim.screen(2)
        assert (screen.text, screen.line, screen.effect, screen.brightness) == (
            "暂停服务",
            1,
            "blink",
            4,
        )
        await rig.bus.clear(2)
    assert rig.sim.screen(2).text == ""
    assert rig.sim.screen(2).brightness == 4


async def test_broadcast_reaches_every_screen_without_waiting_for_replies(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.bus.show_text(0, "午间休息")
        await rig.bus.query(1)  # the next request goes after the broadcast on the same line
    assert [rig.sim.screen(a).text for a in (1, 2, 3)] == ["午间休息"] * 3
    assert rig.bus.counters.timeouts == 0


async def test_concurrent_requests_are_serialised_and_all_land(tmp_path: Path) -> None:
    """With slow screens, a second request sent before the first answer would collide."""
    async with running(tmp_path, reply_delay=0.03) as rig:
        calls = [rig.bus.show_call(a, f"A{n:03d}", a) for n in range(1, 4) for a in (1, 2, 3)]
        async with asyncio.timeout(5):
            await asyncio.gather(*calls)
        assert rig.sim.overlaps == 0
        assert rig.sim.min_idle is not None and rig.sim.min_idle >= 0.9 * rig.bus.protocol.gap
        assert sum(rig.sim.requests.values()) == 9
        for a in (1, 2, 3):
            assert rig.sim.screen(a).last_call is not None


async def test_muted_display_goes_offline_alone_and_comes_back(rig: Rig) -> None:
    rig.sim.mute(2)
    async with asyncio.timeout(5):
        with pytest.raises(DeviceTimeout):
            await rig.bus.show_call(2, "A010", 2)
    assert rig.sim.requests[2] == 3  # first try + 2 retries
    assert rig.bus.address_health(2).state == "offline"
    assert rig.log.last(2) == rig.bus.address_health(2)
    async with asyncio.timeout(5):
        await rig.bus.show_call(1, "A011", 1)
        await rig.bus.show_call(3, "A012", 3)
    assert rig.sim.screen(3).text == "请A012号到3号窗口"
    assert rig.bus.health().state == "ok"
    assert rig.bus.address_health(1).state == "ok"

    rig.sim.unmute(2)
    async with asyncio.timeout(5):
        await rig.bus.show_call(2, "A013", 2)
    await rig.log.wait_for(2, "ok")
    assert rig.sim.screen(2).text == "请A013号到2号窗口"


async def test_corrupted_reply_is_retried(rig: Rig) -> None:
    rig.sim.corrupt_next_reply()
    async with asyncio.timeout(5):
        await rig.bus.show_text(1, "欢迎光临")
    assert rig.sim.requests[1] == 2
    assert rig.bus.counters.bad_frames == 1
    assert rig.bus.address_health(1).state == "ok"


async def test_busy_display_is_retried(rig: Rig) -> None:
    rig.sim.reject_next(0x01, address=1)
    async with asyncio.timeout(5):
        await rig.bus.show_text(1, "请稍候")
    assert rig.sim.requests[1] == 2
    assert rig.sim.screen(1).text == "请稍候"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(0x02, "bad_command"), (0x03, "text_too_long"), (0x04, "unsupported_char")],
)
async def test_rejection_raises_with_reason_and_is_not_retried(rig: Rig, status: int, reason: str) -> None:
    rig.sim.reject_next(status, address=3)
    async with asyncio.timeout(5):
        with pytest.raises(DisplayRejected) as info:
            await rig.bus.show_text(3, "窗口暂停")
    assert (info.value.reason, info.value.address, info.value.sent) == (reason, 3, True)
    assert rig.sim.requests[3] == 1
    assert rig.sim.screen(3).text == ""
    assert rig.bus.address_health(3).state == "ok"  # it answered: it is alive


async def test_too_long_text_refused_before_sending(rig: Rig) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(DisplayRejected) as info:
            await rig.bus.show_text(1, "请" * 33)  # 66 bytes in GB18030
    assert info.value.reason == "text_too_long" and not info.value.sent
    assert rig.sim.requests[1] == 0


async def test_unplug_takes_bus_offline_and_plug_recovers(rig: Rig) -> None:
    rig.sim.unplug()
    await rig.log.wait_for(0, "offline")
    assert rig.bus.address_health(1).state == "offline"
    with pytest.raises(DeviceOffline):
        await rig.bus.show_text(1, "无人")
    rig.sim.plug()
    await rig.log.wait_for(0, "ok")
    async with asyncio.timeout(5):
        await rig.bus.show_call(1, "B002", 1)
    assert rig.sim.screen(1).text == "请B002号到1号窗口"
    assert rig.bus.counters.reconnects >= 1


async def test_configured_addresses_are_probed_on_connect(tmp_path: Path) -> None:
    """A display missing from the line is known before anyone calls a ticket on it."""
    sim = LedBusSim(str(tmp_path / "ttyLED"), addresses=[1, 2])
    sim.plug()
    log = HealthLog()
    bus = LedBus("led", sim.path, addresses=[1, 2, 7], on_address_health=log.address, backoff=FAST)
    task = asyncio.create_task(bus.run())
    try:
        await log.wait_for(7, "offline")
        assert bus.address_health(1).state == "ok"
        assert bus.address_health(2).state == "ok"
        assert sim.requests[1] == 1 and sim.requests[2] == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sim.close()
