"""A live config change (admin console) moves a pad and an LED address to another window, no restart.

The device manager looks up which window a pad, badge reader or LED address serves at each
use, so after ``HallService.reconfigure`` the simulated pad rates the new window's visitor
and the LED shows the new window's calls. Run with the pcscd lock (tests/devices).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hallctl import events as ev
from hallctl.daemon import Hall
from tests.devices.test_hall_devices import Watch, hall_config


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(hall_config(tmp_path, keep_kinds=("idcard", "printer", "led_bus", "evalpad")), state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_pad_and_led_address_follow_a_live_window_edit(hall: Hall) -> None:
    cfg = hall.service.cfg
    w1 = cfg.window_by_number(1)
    w5 = cfg.window_by_number(5)
    assert w1 is not None and w5 is not None and w1.pad == "pad1" and w1.led_address == 1 and w5.pad is None
    moved = tuple(
        w.model_copy(update={"pad": None, "led": None, "led_address": None})
        if w.number == 1
        else w.model_copy(update={"pad": "pad1", "led": "led-floor1", "led_address": 1})
        if w.number == 5
        else w
        for w in cfg.window
    )
    await hall.service.reconfigure(cfg.model_copy(update={"window": moved}), ("window",))

    watch = Watch(hall)
    ticket = (await hall.service.issue("D")).ticket  # window 5 serves D
    await hall.service.call_next(5)
    await watch.wait(lambda e: isinstance(e, ev.TicketCalled) and e.window == 5)
    await hall.bus.drain()
    assert hall.sims["led-floor1"].screen(1).text == f"请{ticket.number}号到5号窗口"

    await hall.service.finish(5)
    pad = hall.sims["pad1"]
    await hall.bus.drain()  # the pad handler returns once the pad acknowledged the prompt
    assert pad.prompt is not None and pad.prompt[1] == ticket.number
    pad.press(5)
    rec = await watch.wait(lambda e: isinstance(e, ev.EvaluationRecorded))
    assert isinstance(rec, ev.EvaluationRecorded)
    assert (rec.ticket_id, rec.level, rec.window, rec.channel) == (ticket.id, 5, 5, "pad")
