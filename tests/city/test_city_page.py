"""The city dashboard page in headless Chromium, fed by a real central (Mosquitto, PostgreSQL,
``hallctl central``) with twelve halls' messages as halls publish them; both languages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.async_api import async_playwright

from hallctl.citylog import EventLogRow
from tests.city.city_helpers import Central
from tests.mqtt.mqtt_helpers import Mosquitto
from tests.ui.uihelpers import BROWSER_ARGS, CHROMIUM, open_page, shot

pytestmark = pytest.mark.browser

NAMES = [
    ("shi", "市政务服务中心", "City Service Centre"),
    ("xicheng", "西城区政务服务中心", "Xicheng District Centre"),
    ("dongcheng", "东城区政务服务中心", "Dongcheng District Centre"),
    ("haidian", "海淀区政务服务中心", "Haidian District Centre"),
    ("chaoyang", "朝阳区政务服务中心", "Chaoyang District Centre"),
    ("fengtai", "丰台区政务服务中心", "Fengtai District Centre"),
    ("jiedao1", "金融街街道便民服务中心", "Jinrongjie Street Centre"),
    ("jiedao2", "德胜街道便民服务中心", "Desheng Street Centre"),
    ("zhen1", "长辛店镇便民服务中心", "Changxindian Town Centre"),
    ("zhen2", "王佐镇便民服务中心", "Wangzuo Town Centre"),
    ("cun1", "南宫村便民服务站", "Nangong Village Point"),
    ("cun2", "怪村便民服务站", "Guaicun Village Point"),
]


def rows_for(i: int, now: datetime) -> list[EventLogRow]:
    """A morning of hall ``i``: issues, first calls (some late), ratings."""
    out: list[EventLogRow] = []
    seq = 0
    for n in range(1, 6 + i):
        tid = f"{now:%Y%m%d}-A{n:03d}"
        issued = now - timedelta(hours=2) + timedelta(minutes=5 * n)
        called = issued + timedelta(minutes=4 if (n + i) % 4 else 25)
        for kind, at, win, data in (
            ("issued", issued, None, {"number": f"A{n:03d}", "priority": "normal", "channel": "kiosk"}),
            ("called", called, 1, {"number": f"A{n:03d}", "recall": 0}),
            ("evaluated", called + timedelta(minutes=6), 1, {"level": 1 if (n * i) % 9 == 4 else 5, "channel": "pad"}),
        ):
            seq += 1
            out.append(EventLogRow(seq, at.isoformat(), kind, tid, win, data))
    return out


def wait(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.1)  # bounded poll of the central's JSON


async def test_the_city_page_shows_every_hall_in_both_languages(tmp_path: Path, pg_dsn: str) -> None:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    halls = [{"id": h, "name": zh, "name_en": en} for h, zh, en in NAMES]
    central = Central(tmp_path / "central", broker.url, pg_dsn, hall=halls)
    # Today's noon in the dashboard's time zone: every generated row falls on the dashboard's "today".
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=12, minute=0, second=0, microsecond=0)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        broker.start()
        central.start()
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        expected_rows = 0
        msgs: list[tuple[str, str, bool]] = []
        for i, (hid, _, _) in enumerate(NAMES):
            root = f"hallctl/{hid}"
            online = i != 11  # the last village point is offline
            msgs.append((f"{root}/status", "online" if online else "offline", True))
            for cat, waiting in (("A", 3 + i % 5), ("B", i % 3)):
                msgs.append((f"{root}/queue/{cat}/state", json.dumps({"category": cat, "waiting": waiting}), True))
            current = 26.5 if i % 6 else 29.8
            climate: dict[str, Any] = {"zone": "floor1", "mode": "cool", "target": 26.0, "current": current}
            msgs.append((f"{root}/climate/floor1/state", json.dumps(climate), True))
            energy = {"zone": "floor1", "day": now.date().isoformat(), "kwh": round(12.5 + 3.1 * i, 1)}
            msgs.append((f"{root}/climate/floor1/energy", json.dumps(energy), True))
            rows = rows_for(i, now)
            expected_rows += len(rows)
            msgs.extend((f"{root}/event/log", r.wire(hid), False) for r in rows)
            if i in (2, 7):
                alert = {
                    "at": now.isoformat(),
                    "alert": "wait_exceeded",
                    "severity": "warning",
                    "message": "A类等候超过20分钟",
                    "message_en": "category A waiting over 20 min",
                    "subject": "A",
                }
                msgs.append((f"{root}/event/alert", json.dumps(alert, ensure_ascii=False), False))
        for topic, payload, retain in msgs:
            pub.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

        wait(lambda: central.city()["totals"]["issued"] == sum(5 + i for i in range(12)), 20, "every row stored")
        city = central.city()
        assert city["totals"]["online"] == 11 and city["totals"]["halls"] == 12
        assert city["totals"]["alerts"] == 2
        assert [h["id"] for h in city["halls"]] == [h for h, _, _ in NAMES]

        async with async_playwright() as p:
            b = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = await open_page(b, f"{central.url}/city", 1920, 1080)
                await page.locator(".hall").nth(11).wait_for()
                assert await page.locator(".hall").count() == 12
                first = page.locator(".hall[data-hall=shi]")
                assert "市政务服务中心" in await first.inner_text()
                assert await page.locator("#k-online").inner_text() == "11/ 12"
                assert await page.locator(".hall[data-alerts=yes]").count() == 2
                assert await page.locator(".hall[data-status=offline]").count() == 1
                assert "A类等候超过20分钟" in await page.locator("#ticker").inner_text()
                await shot(page, "city-zh")
                # The cross-hall report of yesterday, as a file in the page's language (docs/city.md#reports).
                yesterday = (now.date() - timedelta(days=1)).isoformat()
                href = await page.locator("#rep-day").get_attribute("href")
                assert href == f"/api/v1/reports/daily?format=xlsx&lang=zh&day={yesterday}", href
                got = await page.request.get(f"{central.url}{href}")
                assert got.ok and got.headers["content-type"].startswith("application/vnd.openxmlformats")
                await page.locator(".langbtn").click()
                await page.locator("#title", has_text="City service halls").wait_for()
                assert "City Service Centre" in await first.inner_text()
                assert "category A waiting over 20 min" in await page.locator("#ticker").inner_text()
                assert "Tickets today" in await page.locator(".kpis").inner_text()
                await shot(page, "city-en")
                assert "lang=en" in (await page.locator("#rep-month").get_attribute("href") or "")
                assert "This month" in await page.locator("#rep-month").inner_text()
            finally:
                await b.close()
    finally:
        pub.loop_stop()
        pub.disconnect()
        central.stop()
        broker.stop()
