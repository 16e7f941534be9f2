"""Fixtures for the page tests: a running hall and a headless Chromium per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

import hallctl.daemon
from tests.ui.uihelpers import BROWSER_ARGS, CHROMIUM, HallRunner

if not Path(CHROMIUM).exists():  # pragma: no cover - the page tests need Debian's chromium
    pytest.skip("Debian chromium is not installed", allow_module_level=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HallRunner]:
    # Only the core and the HTTP server: the tests play the hardware's part by calling the
    # service (card_read, device_health, sensor_reading), so the pages are tested without
    # depending on drivers, simulators or the MQTT broker.
    monkeypatch.setattr(hallctl.daemon, "component_factories", list)
    r = HallRunner(tmp_path, card_dedupe_seconds=0, per_id_daily_limit=3)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield b
        finally:
            await b.close()
