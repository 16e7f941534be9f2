"""The calling screen's voice: every call announced, repeated, in order, never overlapping."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Request, expect

import hallctl.daemon
from hallctl import events as ev
from hallctl.voice.spoken import announcement_words
from tests.ui.uihelpers import HallRunner, open_page, shot

REPEAT = 2  # uihelpers.make_config sets [screen] announce_repeat = 2


@pytest.fixture
async def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HallRunner]:
    """The page tests' hall, with sign-in not required: these tests call at five windows and the demo
    has two staff members; sign-in has its own tests (test_window_terminal.py, test_journey.py)."""
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    r = HallRunner(tmp_path, card_dedupe_seconds=0, per_id_daily_limit=3, require_sign_in=False)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


# Five calls at five of the demo hall's windows (its C counter is closed in these tests), none
# finishing another: a call whose ticket has ended before its turn is not said (tested below),
# so a burst at one window would say only its last call.
BURST = ((1, "A"), (2, "A"), (3, "B"), (5, "D"), (6, "A"))


async def test_five_calls_in_one_second_are_announced_in_order_without_overlap(
    runner: HallRunner, browser: Browser
) -> None:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    for _, category in BURST:
        await svc.issue(category, channel="kiosk", kiosk="k1")
    await svc.sign_in(1, "0231")
    await svc.sign_in(2, "0232")
    svc.sensor_reading("floor1", 24.5, 50.0)
    svc.sensor_reading("floor2", 25.8, 56.0)
    # Headless Chromium has no speech voices, so this exercises the espeak-ng WAV path;
    # ?rate= plays the WAVs faster to keep the test short (order and overlap are unaffected).
    screen = await open_page(browser, runner.url("/screen", "display", rate=10), 1920, 1080)
    wav: list[str] = []

    def on_request(req: Request) -> None:
        if "/api/v1/voice/" in req.url:
            wav.append(req.url)

    screen.on("request", on_request)

    started = time.monotonic()
    expected: list[tuple[str, int]] = []
    for window, _ in BURST:
        t = await svc.call_next(window)
        assert t is not None
        expected.append((t.number, window))
    assert time.monotonic() - started < 1.0, "the five calls must happen within one second"
    assert [n for n, _ in expected] == ["A001", "A002", "B001", "D001", "A003"]

    await screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {len(BURST) * REPEAT}", timeout=90000
    )
    log: list[dict[str, Any]] = await screen.evaluate("window.__voiceLog")
    assert len(log) == 2 * len(BURST) * REPEAT, log

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
    assert texts == [announcement_words(n, w) for n, w in expected]  # what was said: the numbers in words

    # The daemon's WAVs were fetched, in the same order.
    fetched: list[str] = []
    for url in wav:
        m = re.search(r"/api/v1/voice/\d{8}-([A-Z]+\d+)\.wav", url)
        assert m is not None, url
        if m[1] not in fetched:
            fetched.append(m[1])
    assert fetched == [n for n, _ in expected]

    # The latest calls list ends up newest first.
    assert await screen.locator("#newest-num").text_content() == "A003"
    history = await screen.locator("#history li").evaluate_all("els => els.map(e => e.dataset.number)")
    assert history[:3] == ["D001", "B001", "A002"]
    await shot(screen, "screen")


# A stand-in for the Web Speech API (speechSynthesis + SpeechSynthesisUtterance). Headless Chromium has no
# voices, so the real API cannot speak here; the stub behaves like Chromium's where screen.js depends on it:
# getVoices() is empty until the list "loads" (then `voiceschanged`), speak() queues, and each utterance
# gets `start` then `end` (or `error`) later, as events and through its on<event> handlers.
FAKE_SPEECH = """
(() => {
  const FAIL = %(fail)s;  // null, or an error code every utterance fails with (e.g. "not-allowed")
  const VOICES = [{ lang: "zh-CN", name: "Test Mandarin", localService: true, default: true, voiceURI: "test-zh" }];
  const rec = (window.__speech = { spoken: [], events: [], getVoices: 0 });
  let loaded = false;
  let loading = false;
  let current = null;
  const queue = [];

  class FakeUtterance extends EventTarget {
    constructor(text) {
      super();
      Object.assign(this, { text: text === undefined ? "" : String(text), lang: "", voice: null, rate: 1,
        pitch: 1, volume: 1, onstart: null, onend: null, onerror: null });
    }
  }
  const fire = (u, type, extra) => {
    const ev = Object.assign(new Event(type), extra || {});
    rec.events.push({ type, text: u.text, t: performance.now() });
    u.dispatchEvent(ev);
    if (typeof u[`on${type}`] === "function") u[`on${type}`](ev);
  };
  const next = () => {
    if (current || !queue.length) return;
    const u = (current = queue.shift());
    setTimeout(() => {
      if (FAIL) { current = null; fire(u, "error", { error: FAIL }); next(); return; }
      fire(u, "start");
      setTimeout(() => { current = null; fire(u, "end"); next(); }, 40);
    }, 5);
  };

  class FakeSynthesis extends EventTarget {
    constructor() { super(); this.onvoiceschanged = null; }
    get speaking() { return current !== null; }
    get pending() { return queue.length > 0; }
    get paused() { return false; }
    getVoices() {
      rec.getVoices += 1;
      if (!loaded && !loading) {
        loading = true;
        setTimeout(() => {
          loaded = true;
          const ev = new Event("voiceschanged");
          this.dispatchEvent(ev);
          if (typeof this.onvoiceschanged === "function") this.onvoiceschanged(ev);
        }, 20);
      }
      return loaded ? VOICES.slice() : [];
    }
    speak(u) {
      rec.spoken.push({ text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : null,
        busy: current !== null || queue.length > 0, t: performance.now() });
      queue.push(u);
      next();
    }
    cancel() { queue.length = 0; }
    pause() {}
    resume() {}
  }

  Object.defineProperty(window, "speechSynthesis", { value: new FakeSynthesis(), configurable: true });
  Object.defineProperty(window, "SpeechSynthesisUtterance", { value: FakeUtterance, configurable: true,
    writable: true });
})();
"""


async def _screen_with_fake_voice(runner: HallRunner, browser: Browser, fail: str | None) -> tuple[Page, list[str]]:
    """The calling screen with the speech stub installed, and the list of WAV requests it makes."""
    screen = await open_page(
        browser,
        runner.url("/screen", "display", rate=10),
        1920,
        1080,
        init_script=FAKE_SPEECH % {"fail": "null" if fail is None else f'"{fail}"'},
    )
    wav: list[str] = []

    def on_request(req: Request) -> None:
        if "/api/v1/voice/" in req.url:
            wav.append(req.url)

    screen.on("request", on_request)
    return screen, wav


async def _three_calls(runner: HallRunner) -> list[tuple[str, int]]:
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    for _ in range(3):
        await svc.issue("A", channel="kiosk", kiosk="k1")
    await svc.sign_in(1, "0231")
    await svc.sign_in(2, "0232")
    calls: list[tuple[str, int]] = []
    for window in (1, 2, 3):  # three windows: no call finishes an earlier one (its call would be skipped)
        t = await svc.call_next(window)
        assert t is not None
        calls.append((t.number, window))
    assert calls == [("A001", 1), ("A002", 2), ("A003", 3)]
    return calls


async def test_browser_zh_voice_speaks_each_call_in_order_without_overlap_and_no_wav(
    runner: HallRunner, browser: Browser
) -> None:
    """With a zh-CN browser voice (a speechSynthesis stub: headless Chromium has none) calls are spoken, no WAV."""
    screen, wav = await _screen_with_fake_voice(runner, browser, None)
    calls = await _three_calls(runner)

    await screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {len(calls) * REPEAT}", timeout=30000
    )
    speech: dict[str, Any] = await screen.evaluate("window.__speech")
    log: list[dict[str, Any]] = await screen.evaluate("window.__voiceLog")

    # Each call said REPEAT times, in call order, with the event's spoken words (the caption's sentence,
    # numbers in words so no voice reads 001 as "one"), in zh-CN with the zh-CN voice.
    expected_texts = [announcement_words(n, w) for n, w in calls for _ in range(REPEAT)]
    assert expected_texts[:REPEAT] == ["请A零零一号到一号窗口办理"] * REPEAT
    spoken = speech["spoken"]
    assert [s["text"] for s in spoken] == expected_texts, spoken
    assert {(s["lang"], s["voice"]) for s in spoken} == {("zh-CN", "Test Mandarin")}, spoken

    # Never overlapping: each speak() only once the previous utterance has ended (nothing speaking or queued),
    # and the voice's own events are strictly start, end, start, end ... for the same texts.
    assert not any(s["busy"] for s in spoken), spoken
    events = speech["events"]
    assert [e["type"] for e in events] == ["start", "end"] * len(expected_texts), events
    assert [e["text"] for e in events[::2]] == expected_texts
    ends = [e["t"] for e in events[1::2]]
    assert all(nxt["t"] >= end for end, nxt in zip(ends, spoken[1:], strict=False)), (ends, spoken)

    # The screen's log agrees: every repetition went through the browser voice, one at a time.
    assert [e["ev"] for e in log] == ["start", "end"] * len(expected_texts), log
    assert [e["how"] for e in log if e["ev"] == "end"] == ["browser"] * len(expected_texts), log
    assert [e["text"] for e in log if e["ev"] == "start"] == expected_texts

    assert speech["getVoices"] >= 1
    assert wav == [], wav  # the daemon's WAV is only for screens without a zh-CN voice


async def test_browser_voice_error_falls_back_to_the_wav(runner: HallRunner, browser: Browser) -> None:
    """A zh-CN voice that refuses to speak (speechSynthesis stub, error not-allowed) makes the screen play the WAV."""
    screen, wav = await _screen_with_fake_voice(runner, browser, "not-allowed")
    calls = await _three_calls(runner)

    await screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {len(calls) * REPEAT}", timeout=60000
    )
    speech: dict[str, Any] = await screen.evaluate("window.__speech")
    log: list[dict[str, Any]] = await screen.evaluate("window.__voiceLog")
    said = [s["text"] for s in speech["spoken"]]
    assert said == [announcement_words(n, w) for n, w in calls for _ in range(REPEAT)]
    assert [e["how"] for e in log if e["ev"] == "end"] == ["ended"] * len(calls) * REPEAT, log
    fetched = [m[1] for url in wav if (m := re.search(r"/api/v1/voice/\d{8}-([A-Z]+\d+)\.wav", url))]
    assert [n for i, n in enumerate(fetched) if i == 0 or fetched[i - 1] != n] == [n for n, _ in calls], wav


async def test_caption_speech_and_wav_all_use_the_call_events_announcement(
    runner: HallRunner, browser: Browser
) -> None:
    """The calling screen says and shows the TicketCalled event's own text, for the number it shows big."""
    hall = runner.hall
    assert hall is not None
    called: list[ev.TicketCalled] = []
    hall.service.bus.subscribe("test.called", lambda e: called.append(e) if isinstance(e, ev.TicketCalled) else None)
    screen, wav = await _screen_with_fake_voice(runner, browser, None)
    calls = await _three_calls(runner)
    await hall.service.bus.drain()
    assert [(e.number, e.window) for e in called] == calls

    await screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {len(calls) * REPEAT}", timeout=30000
    )
    newest = called[-1]
    await expect(screen.locator("#newest-num")).to_have_text(newest.number)
    await expect(screen.locator("#newest-to")).to_have_text(newest.announcement)
    speech: dict[str, Any] = await screen.evaluate("window.__speech")
    # The voice says the event's words for the caption it shows (请A003号到1号窗口办理 → 请A零零三号到一号窗口办理).
    assert [s["text"] for s in speech["spoken"]] == [e.spoken for e in called for _ in range(REPEAT)]
    assert called[-1].spoken == announcement_words(called[-1].number, called[-1].window)
    assert wav == []

    # The WAV fallback names the call, not a number/window pair: the daemon renders that call's text.
    wav_screen, wav_urls = await _screen_with_fake_voice(runner, browser, "not-allowed")
    await hall.service.recall(3)
    await wav_screen.wait_for_function(
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {REPEAT}", timeout=30000
    )
    assert wav_urls and all(f"/api/v1/voice/{called[-1].ticket_id}.wav" in u for u in wav_urls), wav_urls
    await expect(wav_screen.locator("#newest-to")).to_have_text(called[-1].announcement)


async def test_a_call_whose_ticket_ended_before_its_turn_is_not_said_and_the_idle_screen_welcomes(
    runner: HallRunner, browser: Browser
) -> None:
    """A002 finished while A001 is still being said: nobody is coming for A002, so its call is skipped."""
    hall = runner.hall
    assert hall is not None
    svc = hall.service
    # rate=2: each clip (chime + sentence, about 5.5 s) plays in under 3 s, still far longer than the finish takes.
    screen = await open_page(browser, runner.url("/screen", "display", voice="wav", rate=2), 1920, 1080)
    # Nobody called yet: a welcome, not an alarm-red box.
    await expect(screen.locator("#newest-num")).to_have_text("欢迎光临")
    bg = await screen.locator("#newest").evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg != "rgb(58, 13, 13)", bg  # the call colour is for calls only
    await shot(screen, "screen-idle-zh")
    await screen.locator(".langbtn").click()
    await expect(screen.locator("#newest-num")).to_have_text("Welcome")
    # English names are longer: the page still fits its 1920 × 1080 screen (measured, not eyeballed).
    size = await screen.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [1920, 1080], size
    await shot(screen, "screen-idle-en")
    await screen.locator(".langbtn").click()

    for _ in range(2):
        await svc.issue("A", channel="kiosk", kiosk="k1")
    await svc.sign_in(1, "0231")
    await svc.sign_in(2, "0232")
    first = await svc.call_next(1)
    second = await svc.call_next(2)
    assert first is not None and second is not None
    await screen.wait_for_function("window.__voiceLog.some(e => e.ev === 'start')")
    await svc.finish(2)
    await screen.wait_for_function(
        "window.__voiceLog.some(e => e.ev === 'skip') && "
        f"window.__voiceLog.filter(e => e.ev === 'end').length >= {REPEAT}",
        timeout=30000,
    )
    log: list[dict[str, Any]] = await screen.evaluate("window.__voiceLog")
    assert [(e["ev"], e["number"]) for e in log] == [("start", "A001"), ("end", "A001")] * REPEAT + [
        ("skip", "A002")
    ], log
    # The caption still shows the latest call: what was called stays visible, only the voice is spared.
    await expect(screen.locator("#newest-num")).to_have_text("A002")
