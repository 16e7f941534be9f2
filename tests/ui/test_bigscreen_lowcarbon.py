"""The big screen's 低碳管理 panel: each zone's temperature, setpoint, action, today's kWh and comfort.

The hall is the demo's (two floors, one air conditioner each). The page tests run without
simulators, so the units are stand-ins registered for their kinds that take every command and
report it back, the way the real drivers return a read-back.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from drivers.aircon import AcCommand, AcState
from hallctl.climate import units
from hallctl.config import ClimateUnitConfig
from tests.ui.uihelpers import HallRunner, open_page, shot

ACTIONS = {
    "cooling": ("制冷", "Cooling"),
    "heating": ("制热", "Heating"),
    "drying": ("除湿", "Drying"),
    "fan": ("送风", "Fan"),
    "idle": ("待机", "Standby"),
    "off": ("关闭", "Off"),
}


class EchoUnit:
    """Takes the command and reads it back (what a healthy unit does)."""

    def __init__(self, cfg: ClimateUnitConfig) -> None:
        self.unit_id = cfg.id
        self.state = AcState(False, "cool", 26.0, "auto")

    async def apply(self, cmd: AcCommand) -> AcState:
        self.state = AcState(cmd.power, cmd.mode, cmd.setpoint, cmd.fan)
        return self.state

    async def read(self) -> AcState:
        return self.state

    async def release(self) -> None:
        """Nothing to hand back."""

    async def close(self) -> None:
        """Nothing to close."""


@pytest.fixture(autouse=True)
def echo_units(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("modbus", "mqtt", "bacnet"):
        monkeypatch.setitem(units._FACTORIES, kind, EchoUnit)


async def test_the_lowcarbon_panel_shows_each_zone_in_both_languages_within_the_screen(
    runner: HallRunner, browser: Browser
) -> None:
    hall = runner.hall
    assert hall is not None
    hall.service.sensor_reading("floor1", 24.5, 50.0)
    hall.service.sensor_reading("floor2", 28.6, 62.0)  # above the band: the floor cools
    big = await open_page(browser, runner.url("/bigscreen", "display"), 1920, 1080)
    panel = big.locator("#lowcarbon")
    f1, f2 = panel.locator('.zone[data-zone="floor1"]'), panel.locator('.zone[data-zone="floor2"]')
    await expect(f1.locator(".zn")).to_have_text("一楼")
    await expect(f1.locator(".zt")).to_contain_text("24.5°C")
    await expect(f2.locator(".zt")).to_contain_text("28.6°C")
    # What the zone does right now (cooling, or held off by the compressor's rest after start-up).
    state = hall.climate.states["floor2"]
    zh, en = ACTIONS[state.action]
    await expect(f2.locator(".za")).to_have_text(zh)
    if state.setpoint is not None:
        await expect(f2.locator(".zt small")).to_have_text(f"设定 {state.setpoint:g}°C")
    await expect(f2.locator(".zf")).to_contain_text("kWh · 舒适达标")
    assert await big.evaluate("document.documentElement.scrollWidth") <= 1920
    assert await big.evaluate("document.documentElement.scrollHeight") <= 1080
    await shot(big, "bigscreen-lowcarbon-zh")

    await big.locator(".langbtn").click()
    await expect(big.locator("#lowcarbon").locator("xpath=..").locator("h2")).to_have_text(
        "Low-carbon management · today"
    )
    await expect(f1.locator(".zn")).to_have_text("Ground floor")  # the zone's name_en
    await expect(f2.locator(".za")).to_have_text(en)
    if state.setpoint is not None:
        await expect(f2.locator(".zt small")).to_have_text(f"set {state.setpoint:g}°C")
    await expect(f2.locator(".zf")).to_contain_text("kWh · in band")
    assert await big.evaluate("document.documentElement.scrollWidth") <= 1920
    assert await big.evaluate("document.documentElement.scrollHeight") <= 1080
    # Nothing in the panel is cut off: every zone row fits its own width.
    clipped = await big.evaluate(
        "[...document.querySelectorAll('#lowcarbon .zone > *')].filter(e => e.scrollWidth > e.clientWidth + 1).length"
    )
    assert clipped == 0
    await shot(big, "bigscreen-lowcarbon-en")
