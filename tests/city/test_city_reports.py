"""The central's reports: a hall's own report from the central's PostgreSQL, and the cross-hall report.

Two halls run in-process with fake clocks (the scripted Monday of tests/core/test_core_reports.py
in 西城, a shorter day in 东城 with other targets). Their event logs go into a real PostgreSQL
through the central's own ingest path: each row as the feed sends it (``EventLogRow.wire``),
parsed by the central (``parse_wire``) and written by ``CentralStore.insert``. Not through a
broker: the fake clocks put the day in 2026-11-23 in a few milliseconds, and the transport has
its own tests (test_city_e2e.py, test_city_feed.py); what is checked here is that one report
code over two sources gives one answer.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI

from hallctl import config as hall_config
from hallctl.central import config as central_config
from hallctl.central import reports
from hallctl.central.store import CentralStore
from hallctl.central.web_reports import report_router
from hallctl.citylog import EventLogRow, parse_wire
from hallctl.config import ConfigError
from hallctl.reports.attendance import day_bounds
from tests.core import conftest as core_fixtures
from tests.core.conftest import HallFactory
from tests.core.core_helpers import REPO, SHANGHAI, FakeClock, LiveHall, config_dict, to_toml
from tests.core.test_core_reports import DAY, OVER, at, ok, script_day

hall_factory = core_fixtures.hall_factory  # the core tests' in-process halls, in this module too

XICHENG: dict[str, Any] = {**OVER, "hall": {"id": "xicheng", "name": "西城区政务服务中心", "name_en": "Xicheng"}}
DONGCHENG: dict[str, Any] = {
    "hall": {"id": "dongcheng", "name": "东城区政务服务中心", "name_en": "Dongcheng"},
    "category": [
        {
            "prefix": "A",
            "name": "综合受理",
            "name_en": "General",
            "target_wait_minutes": 5,  # not 西城's 10: the city total must use each hall's own target
            "service_minutes": 10,
            "hours": ["mon-fri 09:00-17:00"],
            "department": "市民政局",
        }
    ],
    "window": [{"number": 1, "categories": ["A"]}],
    "staff": [{"id": "0501", "name": "赵强", "department": "市民政局"}],
}


async def script_dongcheng(live: LiveHall, clock: FakeClock) -> None:
    """东城's Monday: waits 4, 11, 2 min (target 5: two within); services 7 and 17 min (limit 10); ratings 4 and 1."""
    c, w1, p1, kiosk = live.client, live.auth("w1"), live.auth("p1"), live.auth("kiosk")
    at(clock, "08:58")
    await ok(c.post("/api/v1/windows/1/sign-in", json={"staff": "0501"}, headers=w1))
    at(clock, "09:00")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A001
    at(clock, "09:01")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A002
    at(clock, "09:04")
    await ok(c.post("/api/v1/windows/1/call-next", headers=w1))  # A001 waited 4 min
    at(clock, "09:05")
    await ok(c.post("/api/v1/windows/1/start", headers=w1))
    at(clock, "09:12")
    await ok(c.post("/api/v1/windows/1/finish", headers=w1))  # 7 min
    await ok(c.post("/api/v1/windows/1/evaluation", json={"level": 4}, headers=p1))
    await ok(c.post("/api/v1/windows/1/call-next", headers=w1))  # A002 waited 11 min: over 5
    at(clock, "09:13")
    await ok(c.post("/api/v1/windows/1/start", headers=w1))
    at(clock, "09:30")
    await ok(c.post("/api/v1/windows/1/finish", headers=w1))  # 17 min: over 10
    await ok(c.post("/api/v1/windows/1/evaluation", json={"level": 1}, headers=p1))  # 差评
    at(clock, "09:40")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A003
    at(clock, "09:42")
    await ok(c.post("/api/v1/windows/1/call-next", headers=w1))  # 2 min
    at(clock, "09:45")
    await ok(c.post("/api/v1/windows/1/no-show", headers=w1))
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI))


async def feed(live: LiveHall, central: CentralStore) -> int:
    """The hall's whole event log into the central, row by row as the feed publishes it."""
    rows = await live.hall.store.log_rows(0, None, 100_000)
    return await central.insert([parse_wire(r.wire(live.hall.cfg.hall.id)) for r in rows])


class City:
    def __init__(self, cfg: central_config.CentralConfig, store: CentralStore, halls: dict[str, LiveHall]) -> None:
        self.cfg, self.store, self.halls = cfg, store, halls
        app = FastAPI()
        app.include_router(report_router(cfg, store))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://central")


@pytest.fixture
async def city(hall_factory: HallFactory, pg_dsn: str, tmp_path: Path) -> AsyncIterator[City]:
    halls: dict[str, LiveHall] = {}
    for over, script in ((XICHENG, script_day), (DONGCHENG, script_dongcheng)):
        clock = FakeClock(datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI))
        live: LiveHall = await hall_factory(clock=clock, **over)
        await script(live, clock)
        halls[over["hall"]["id"]] = live
        (tmp_path / f"{over['hall']['id']}.toml").write_text(to_toml(config_dict(**over)), encoding="utf-8")
    (tmp_path / "central.toml").write_text(
        f'[postgres]\ndsn = "{pg_dsn}"\n'
        '[[hall]]\nid = "xicheng"\nname = "西城"\nconfig = "xicheng.toml"\n'
        '[[hall]]\nid = "dongcheng"\nconfig = "dongcheng.toml"\n'
        '[[hall]]\nid = "nanshan"\nname = "南山镇便民服务中心"\n',  # no config: left out, and said so
        encoding="utf-8",
    )
    cfg = central_config.load(tmp_path / "central.toml")
    store = CentralStore(pg_dsn)
    await store.connect()
    await store.migrate()
    for live in halls.values():
        assert await feed(live, store) > 10
    # 南山 sends rows too; the central cannot say what its day or targets are.
    await store.insert(
        [("nanshan", EventLogRow(1, "2026-11-23T01:00:00+00:00", "issued", "20261123-A001", None, {"number": "A001"}))]
    )
    c = City(cfg, store, halls)
    yield c
    await c.client.aclose()
    await store.close()


def without_cases(report: Any) -> Any:
    """A hall's report as a source without the case table gives it: ``bad_cases`` unknown (None)."""
    if isinstance(report, dict):
        return {
            k: (None if k == "bad_cases" else False if k == "cases_known" else without_cases(v))
            for k, v in report.items()
            if k != "generated_at"
        }
    if isinstance(report, list):
        return [without_cases(x) for x in report]
    return report


async def hall_own(live: LiveHall, path: str, **params: str) -> dict[str, Any]:
    r = await live.client.get(f"/api/v1/reports/{path}", params=params, headers=live.auth("admin"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_halls_report_at_the_central_is_the_halls_own_report(city: City) -> None:
    for hid, live in city.halls.items():
        own = await hall_own(live, "daily", day=DAY)
        r = await city.client.get("/api/v1/reports/daily", params={"day": DAY, "hall": hid})
        assert r.status_code == 200, r.text
        central = r.json()
        assert central["total"]["bad_cases"] is None and central["cases_known"] is False  # never a false 0
        assert own["total"]["bad_cases"] == 1  # the hall knows its case
        assert without_cases(central) == without_cases(own), hid
    xc = city.halls["xicheng"]
    now = xc.svc.clock()
    # The rows themselves: the central reads what the hall's store reads for a report, including each
    # window's last sign-in or sign-out before the range (王芳 never signed out on the 23rd).
    for d in (date(2026, 11, 23), date(2026, 11, 24)):
        start, end = day_bounds(xc.hall.cfg, d)
        own_rows = await xc.hall.store.report_events(start.astimezone(UTC), end.astimezone(UTC))
        assert await city.store.report_rows("xicheng", start, end) == own_rows
    before = await city.store.report_rows("xicheng", *day_bounds(xc.hall.cfg, date(2026, 11, 24)))
    assert [(r.kind, r.window, r.data.get("staff")) for r in before] == [
        ("signed_in", 2, "0232"),
        ("signed_out", 1, "0231"),
    ]
    # The next day and the month, computed at the hall's "now" (a report of today counts attendance up to now).
    for kind, period, own in (
        ("daily", "2026-11-24", await hall_own(xc, "daily", day="2026-11-24")),
        ("monthly", "2026-11", await hall_own(xc, "monthly", month="2026-11")),
    ):
        central = await reports.report(city.store, city.cfg, kind, period, "xicheng", now)  # type: ignore[arg-type]
        assert without_cases(central) == without_cases(own), period
    assert [r["name"] for r in own["by_staff"]] == ["李明", "王芳"]


async def test_the_cross_hall_report_totals_every_visit_with_its_own_halls_targets(city: City, tmp_path: Path) -> None:
    r = await city.client.get("/api/v1/reports/daily", params={"day": DAY})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["halls"] == ["xicheng", "dongcheng"]
    assert rep["omitted"] == [{"hall": "nanshan", "name": "南山镇便民服务中心", "reason": "no_config"}]
    by_hall = {h["hall"]: h for h in rep["by_hall"]}
    for hid, live in city.halls.items():  # each row is that hall's own total
        own = await hall_own(live, "daily", day=DAY)
        assert by_hall[hid] == {
            **without_cases(own["total"]),
            **{k: by_hall[hid][k] for k in ("hall", "name", "name_en")},
        }
    assert (by_hall["xicheng"]["name"], by_hall["dongcheng"]["name"]) == ("西城", "东城区政务服务中心")
    # The city from the two scripts, worked out by hand (not from the halls' figures):
    # waits 西城 360 780 900 60, 东城 240 660 120 s; within target: 西城 3 of 4 (10/15 min), 东城 2 of 3 (5 min).
    t = rep["total"]
    assert (t["issued"], t["called"], t["served"], t["no_show"], t["transferred"]) == (7, 7, 5, 2, 0)
    assert t["avg_wait_s"] == 445.7  # 3120 / 7; the mean of the halls' means would be 432.5
    assert t["p90_wait_s"] == 900.0  # the 7th of 7 by nearest rank
    assert t["avg_service_s"] == 708.0  # (480 + 1440 + 180 + 420 + 1020) / 5
    assert t["service_level"] == 0.7143  # 5 / 7, not (0.75 + 0.6667) / 2
    assert (t["rated"], t["unrated"], t["satisfaction"], t["bad_ratings"], t["bad_cases"]) == (4, 1, 0.5, 2, None)
    assert (t["wait_overtime"], t["service_overtime"]) == (2, 2)
    assert rep["ratings"] == {"5": 1, "4": 1, "3": 0, "2": 1, "1": 1, "unrated": 1}
    dept = {d["department"]: d for d in rep["by_department"]}
    assert (dept["市民政局"]["issued"], dept["市场监管局"]["issued"]) == (6, 1)
    assert {h["hour"]: h["issued"] for h in rep["by_hour"]} == {9: 6, 10: 1}

    x = await city.client.get("/api/v1/reports/daily", params={"day": DAY, "format": "xlsx"})
    assert x.status_code == 200 and "city-daily-2026-11-23.xlsx" in x.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames == ["各中心", "汇总", "部门", "分时", "评价"]
    ws = wb["各中心"]
    header = [c.value for c in ws[1]]
    assert header[:5] == ["中心编号", "名称", "取号量", "叫号量", "办结量"]
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["xicheng"]["平均等候(分钟)"] == 8.8 and rows["dongcheng"]["等候达标率"] == 0.6667  # 525 s; 2/3
    assert rows["xicheng"]["差评整改工单"] is None  # unknown, not 0
    assert [c.value for c in wb["汇总"][2]][:4] == [DAY, 7, 7, 5]

    m = await city.client.get("/api/v1/reports/monthly", params={"month": "2026-11", "format": "xlsx", "lang": "en"})
    wb = openpyxl.load_workbook(io.BytesIO(m.content))
    assert wb.sheetnames == ["Halls", "Summary", "By day", "Departments", "By hour", "Ratings"]
    assert [c.value for c in wb["Halls"][1]][:3] == ["Hall id", "Name", "Issued"]
    assert [c.value for c in wb["Halls"][3]][:3] == ["dongcheng", "Dongcheng", 3]
    assert [c.value for c in wb["By day"][24]][:4] == [DAY, 7, 7, 5]

    csv = await city.client.get("/api/v1/reports/daily", params={"day": DAY, "format": "csv", "lang": "en"})
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Hall id,Name,Issued") and lines[1].startswith("xicheng,Xicheng,4,4,3,1,0,8.8")


async def test_the_answers_name_what_is_wrong(city: City) -> None:
    c = city.client
    r = await c.get("/api/v1/reports/daily", params={"day": DAY, "hall": "nanshan"})
    assert (r.status_code, r.json()["code"]) == (404, "no_hall_config")
    assert "nanshan" in r.json()["message_en"]
    r = await c.get("/api/v1/reports/daily", params={"day": "2026-02-30"})
    assert (r.status_code, r.json()["code"]) == (422, "bad_day")
    assert (await c.get("/api/v1/reports/monthly", params={"month": "2026-13"})).status_code == 422
    r = await c.get("/api/v1/reports/daily", params={"day": DAY, "format": "csv", "table": "by_staff"})
    assert (r.status_code, r.json()["code"]) == (422, "bad_table")  # staff are per hall: ask with hall=
    r = await c.get(
        "/api/v1/reports/daily", params={"day": DAY, "format": "csv", "table": "by_staff", "hall": "xicheng"}
    )
    assert r.status_code == 200 and "李明" in r.content.decode("utf-8-sig")


def central_cli(central_toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hallctl.cli", "central", str(central_toml), "report", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


async def test_the_cli_writes_the_same_report(city: City, tmp_path: Path) -> None:
    toml, out = tmp_path / "central.toml", tmp_path / "xc.xlsx"
    p = await asyncio.to_thread(
        central_cli, toml, "--day", DAY, "--hall", "xicheng", "--format", "xlsx", "-o", str(out)
    )
    assert p.returncode == 0, p.stderr
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[0] == "汇总" and "工作人员" in wb.sheetnames
    assert [c.value for c in wb["汇总"][2]][:4] == [DAY, 4, 4, 3]
    p = await asyncio.to_thread(central_cli, toml, "--day", DAY, "--format", "csv")
    assert p.returncode == 0, p.stderr
    assert p.stdout.lstrip("\ufeff").splitlines()[1].startswith("xicheng,西城,4,4,3")
    p = await asyncio.to_thread(central_cli, toml, "--day", DAY, "--hall", "nanshan")
    assert p.returncode == 2 and "nanshan" in p.stderr


def test_a_halls_config_is_checked_at_start(tmp_path: Path) -> None:
    (tmp_path / "dc.toml").write_text(to_toml(config_dict(**DONGCHENG)), encoding="utf-8")
    (tmp_path / "bad.toml").write_text('[hall]\nid = "x"\n', encoding="utf-8")
    assert hall_config.load(tmp_path / "dc.toml").hall.id == "dongcheng"
    f = tmp_path / "central.toml"
    f.write_text(
        '[postgres]\ndsn = "x"\n'
        '[[hall]]\nid = "xicheng"\nconfig = "dc.toml"\n'  # another hall's file
        '[[hall]]\nid = "a"\nconfig = "missing.toml"\n'
        '[[hall]]\nid = "b"\nconfig = "bad.toml"\n'
        '[[hall]]\nid = "dongcheng"\nconfig = "dc.toml"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        central_config.load(f)
    lines = err.value.lines
    assert "hall[0].config = 'dc.toml': its [hall] id is 'dongcheng', not 'xicheng'" in lines
    assert any(x.startswith("hall[1].config = 'missing.toml': ") and "cannot read" in x for x in lines), lines
    assert any(x.startswith("hall[2].config = 'bad.toml': hall.name") for x in lines), lines
    assert not any(x.startswith("hall[3]") for x in lines)
