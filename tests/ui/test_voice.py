"""The calling screen's voice: every call announced, repeated, in order, never overlapping."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.async_api import Browser, Request
from uihelpers import HallRunner, open_page, shot

REPEAT = 2  # uihelpers.make_config sets [screen] announce_repeat = 2


async def test_ten_calls_in_one_second_are_announced_in_order_without_overlap(
        runner: HallRunner, browser: Browser) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    for _ in range(10):
        await svc.issue("A", channel="kiosk", kiosk="k1")
    await svc.sign_in(1, "0231")
    await svc.sign_in(2, "0232")
    await svc.sensor_reading("floor1", 24.5, 50.0)
    await svc.sensor_reading("floor2", 25.8, 56.0)
    # Headless Chromium has no speech voices, so this exercises the espeak-ng WAV path;
    # ?rate= plays the WAVs faster to keep the test short (order and overlap are unaffected).
    screen = await open_page(browser, runner.url("/screen", "display", rate=10), 1920, 1080)
    wav: list[str] = []

    def on_request(req: Request) -> None:
        if "/voice/call.wav" in req.url:
            wav.append(req.url)

    screen.on("request", on_request)

    started = time.monotonic()
    expected: list[tuple[str, int]] = []
    for i in range(10):
        window = 1 if i % 2 == 0 else 2
        t = await svc.call_next(window)
        assert t is not None
        expected.append((t.number, window))
    assert time.monotonic() - started < 1.0, "the ten calls must happen within one second"
    assert [n for n, _ in expected] == [f"A{i:03d}" for i in range(1, 11)]

    await screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {10 * REPEAT}", timeout=90000)
    log: list[dict[str, Any]] = await screen.evaluate("window.__voiceLog")
    assert len(log) == 2 * 10 * REPEAT, log

    # Strictly start, end, start, end...: one announcement at a time, each played to its end.
    for i, e in enumerate(log):
        assert e["ev"] == ("start" if i % 2 == 0 else "end"), (i, log)
    for start, end in zip(log[::2], log[1::2], strict=True):
        assert (start["number"], start["rep"]) == (end["number"], end["rep"])
        assert end["how"] == "ended", end
        assert end["t"] >= start["t"]
    for prev_end, nxt in zip(log[1::2], log[2::2], strict=False):
        assert nxt["t"] >= prev_end["t"]

    # In call order, each said REPEAT times, with the right text.
    said = [(e["number"], e["window"]) for e in log if e["ev"] == "start"]
    assert said == [call for call in expected for _ in range(REPEAT)]
    texts = [e["text"] for e in log if e["ev"] == "start"][::REPEAT]
    assert texts == [f"请{n}号到{w}号窗口办理" for n, w in expected]

    # The daemon's WAVs were fetched, in the same order.
    fetched: list[tuple[str, int]] = []
    for url in wav:
        m = re.search(r"number=([A-Z]+\d+)&window=(\d+)", url)
        assert m is not None, url
        call = (m[1], int(m[2]))
        if call not in fetched:
            fetched.append(call)
    assert fetched == expected

    # The latest calls list ends up newest first.
    assert await screen.locator("#newest-num").text_content() == "A010"
    history = await screen.locator("#history li").evaluate_all("els => els.map(e => e.dataset.number)")
    assert history[:3] == ["A009", "A008", "A007"]
    await shot(screen, "screen")
