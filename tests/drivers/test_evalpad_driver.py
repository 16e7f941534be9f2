"""The real EvalPad over a real pty (opened by pyserial) against EvalPadSim."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers import hallframe
from drivers.base import Health
from drivers.errors import DeviceOffline, DeviceTimeout
from drivers.evalpad import CMD_KEY, LEVELS, EvalPad
from drivers.reconnect import Backoff
from drivers.sim.evalpad import EvalPadSim

FAST = Backoff(initial=0.05, maximum=0.2)


class Recorder:
    """Keys, timeouts and health as they arrive, with waits instead of sleeps."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.timeouts = 0
        self.health: list[Health] = []
        self._changed = asyncio.Event()

    def key(self, level: int) -> None:
        self.keys.append(level)
        self._changed.set()

    def timeout(self) -> None:
        self.timeouts += 1
        self._changed.set()

    def on_health(self, health: Health) -> None:
        self.health.append(health)
        self._changed.set()

    async def wait(self, condition: object) -> None:
        assert callable(condition)
        async with asyncio.timeout(5):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def wait_health(self, state: str) -> None:
        await self.wait(lambda: bool(self.health) and self.health[-1].state == state)


@dataclasses.dataclass
class Rig:
    sim: EvalPadSim
    pad: EvalPad
    rec: Recorder


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sim = EvalPadSim(str(tmp_path / "ttyPAD"), address=5)
    sim.plug()
    rec = Recorder()
    pad = EvalPad(
        "pad-3",
        sim.path,
        address=5,
        on_key=rec.key,
        on_timeout=rec.timeout,
        on_health=rec.on_health,
        backoff=FAST,
    )
    task = asyncio.create_task(pad.run())
    try:
        await rec.wait_health("ok")
        yield Rig(sim, pad, rec)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sim.close()


def test_five_levels_named_as_the_policy_does() -> None:
    assert LEVELS == {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


async def test_start_rating_shows_prompt_and_cancel_clears_it(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.pad.start_rating("0231", "A008")
    assert rig.sim.prompt == ("0231", "A008")
    async with asyncio.timeout(5):
        await rig.pad.cancel()
    assert rig.sim.prompt is None


async def test_key_press_is_delivered_and_acknowledged(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.pad.start_rating("0231", "A008")
    rig.sim.press(4)
    await rig.rec.wait(lambda: rig.rec.keys == [4])
    async with asyncio.timeout(5):
        assert await rig.sim.wait_ack(1) == [(CMD_KEY, hallframe.STATUS_OK)]
    assert rig.sim.thanked and rig.sim.prompt is None


async def test_garbage_and_invalid_levels_are_counted_not_delivered(rig: Rig) -> None:
    rig.sim.press_raw(b"\x13\x37\xaa\x00\xff")  # line noise
    corrupt = bytearray(hallframe.encode(5, CMD_KEY, b"\x02"))
    corrupt[-2] ^= 0x40
    rig.sim.press_raw(bytes(corrupt))  # a 不满意 with a broken CRC must not count
    rig.sim.press(0)
    rig.sim.press(6)
    rig.sim.press_raw(hallframe.encode(5, CMD_KEY, b"\x03\x03"))  # wrong payload length
    rig.sim.press(5)
    await rig.rec.wait(lambda: bool(rig.rec.keys))
    assert rig.rec.keys == [5]
    counters = rig.pad.counters
    assert counters.garbage_bytes >= 5
    assert counters.bad_frames == 4  # bad CRC + levels 0 and 6 + two-byte payload
    async with asyncio.timeout(5):
        acks = await rig.sim.wait_ack(4)
    assert [status for _, status in acks] == [hallframe.STATUS_BAD_COMMAND] * 3 + [hallframe.STATUS_OK]


async def test_pad_timeout_is_reported_not_graded(rig: Rig) -> None:
    async with asyncio.timeout(5):
        await rig.pad.start_rating("0231", "A009")
    rig.sim.time_out()
    await rig.rec.wait(lambda: rig.rec.timeouts == 1)
    assert rig.rec.keys == []


async def test_silent_pad_times_out_and_is_reported(rig: Rig) -> None:
    rig.sim.mute()
    async with asyncio.timeout(5):
        with pytest.raises(DeviceTimeout):
            await rig.pad.start_rating("0231", "A010")
    assert rig.pad.health() == Health("offline", "pad not answering")
    rig.sim.mute(False)
    rig.sim.press(3)  # a pad that speaks is alive again
    await rig.rec.wait_health("ok")
    assert rig.rec.keys == [3]


async def test_unplug_then_plug_recovers(rig: Rig) -> None:
    rig.sim.unplug()
    await rig.rec.wait_health("offline")
    with pytest.raises(DeviceOffline):
        await rig.pad.start_rating("0231", "A011")
    rig.sim.plug()
    await rig.rec.wait_health("ok")
    async with asyncio.timeout(5):
        await rig.pad.start_rating("0231", "A011")
    assert rig.sim.prompt == ("0231", "A011")
    rig.sim.press(1)
    await rig.rec.wait(lambda: rig.rec.keys == [1])
    assert rig.pad.counters.reconnects >= 1
