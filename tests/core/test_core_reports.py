"""Daily and monthly reports and attendance, checked against a scripted day.

A live hall with a fake clock is driven through one Monday (2026-11-23, hours 09:00-17:00):
sign-ins, issues, calls, starts, finishes, a no-show, ratings (one 差评, one 未评价). The
expected figures are worked out by hand below from the script, not by the report code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.core.conftest import HallFactory
from tests.core.core_helpers import REPO, SHANGHAI, FakeClock, LiveHall, config_dict, to_toml

DAY = "2026-11-23"
HOURS = ("mon-fri 09:00-17:00",)
OVER: dict[str, Any] = {
    "category": [
        {
            "prefix": "A",
            "name": "便民服务",
            "name_en": "Citizen",
            "target_wait_minutes": 10,
            "service_minutes": 10,
            "hours": HOURS,
            "department": "市民政局",
        },
        {
            "prefix": "B",
            "name": "法人服务",
            "name_en": "Company",
            "target_wait_minutes": 15,
            "service_minutes": 20,
            "hours": HOURS,
            "department": "市场监管局",
        },
    ],
    "window": [{"number": 1, "categories": ["A"]}, {"number": 2, "categories": ["B", "A"]}],
    "staff": [
        {"id": "0231", "name": "李明", "department": "市民政局", "badge": "04A1B2C3"},
        {"id": "0232", "name": "王芳", "department": "市场监管局"},
    ],
}


def at(clock: FakeClock, hhmm: str) -> None:
    h, m = (int(x) for x in hhmm.split(":"))
    clock.set(datetime(2026, 11, 23, h, m, tzinfo=SHANGHAI))


async def ok(resp: Any) -> dict[str, Any]:
    r = await resp
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


async def script_day(live: LiveHall, clock: FakeClock) -> None:
    """The scripted Monday. Each line says what it contributes to the expected figures."""
    c = live.client
    w1, w2, p1, p2 = live.auth("w1"), live.auth("w2"), live.auth("p1"), live.auth("p2")
    kiosk = live.auth("kiosk")
    at(clock, "08:55")
    assert await live.svc.badge_shown(1, "04A1B2C3") == "0231"  # 李明's badge at window 1's reader, before opening
    at(clock, "09:00")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A001
    at(clock, "09:02")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A002
    at(clock, "09:05")
    await ok(c.post("/api/v1/tickets", json={"category": "B"}, headers=kiosk))  # B001
    at(clock, "09:06")
    assert (await ok(c.post("/api/v1/windows/1/call-next", headers=w1)))["ticket"]["number"] == "A001"  # wait 6 min
    at(clock, "09:07")
    await ok(c.post("/api/v1/windows/1/start", headers=w1))
    at(clock, "09:10")
    await ok(c.post("/api/v1/windows/2/sign-in", json={"staff": "0232"}, headers=w2))  # 王芳 10 min late
    at(clock, "09:15")
    await ok(c.post("/api/v1/windows/1/finish", headers=w1))  # service 8 min
    await ok(c.post("/api/v1/windows/1/evaluation", json={"level": 5}, headers=p1))
    assert (await ok(c.post("/api/v1/windows/1/call-next", headers=w1)))["ticket"]["number"] == "A002"  # 13 min
    at(clock, "09:16")
    await ok(c.post("/api/v1/windows/1/no-show", headers=w1))
    at(clock, "09:20")
    assert (await ok(c.post("/api/v1/windows/2/call-next", headers=w2)))["ticket"]["number"] == "B001"  # 15 min
    at(clock, "09:21")
    await ok(c.post("/api/v1/windows/2/start", headers=w2))
    at(clock, "09:45")
    await ok(c.post("/api/v1/windows/2/finish", headers=w2))  # service 24 min (over B's 20)
    await ok(c.post("/api/v1/windows/2/evaluation", json={"level": 2}, headers=p2))  # 差评
    at(clock, "10:00")
    await ok(c.post("/api/v1/tickets", json={"category": "A"}, headers=kiosk))  # A003
    at(clock, "10:01")
    assert (await ok(c.post("/api/v1/windows/2/call-next", headers=w2)))["ticket"]["number"] == "A003"  # 1 min
    at(clock, "10:02")
    await ok(c.post("/api/v1/windows/2/start", headers=w2))
    at(clock, "10:05")
    await ok(c.post("/api/v1/windows/2/finish", headers=w2))  # service 3 min
    await live.svc.evaluate(2, None, "timeout")  # the pad timed out: 未评价
    at(clock, "12:00")
    await ok(c.post("/api/v1/windows/1/sign-out", headers=w1))  # lunch: window 1 unstaffed 12:00-13:00
    at(clock, "13:00")
    await ok(c.post("/api/v1/windows/1/sign-in", json={"staff": "0231"}, headers=w1))
    at(clock, "16:30")
    await live.svc.badge_removed(1)  # badge taken away: 30 min early; unstaffed 16:30-17:00
    # 王芳 never signs out.
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
async def day(hall_factory: HallFactory) -> tuple[LiveHall, FakeClock]:
    clock = FakeClock(datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI))
    live: LiveHall = await hall_factory(clock=clock, **OVER)
    await script_day(live, clock)
    return live, clock


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


async def test_daily_report_matches_the_scripted_day(day: tuple[LiveHall, FakeClock]) -> None:
    live, _ = day
    r = await live.client.get("/api/v1/reports/daily", params={"day": DAY}, headers=live.auth("admin"))
    assert r.status_code == 200, r.text
    rep = r.json()
    # Waits: A001 6 min, A002 13, B001 15, A003 1 -> 360, 780, 900, 60 s. Services: 480, 1440, 180 s.
    t = rep["total"]
    assert (t["issued"], t["called"], t["served"], t["no_show"], t["transferred"]) == (4, 4, 3, 1, 0)
    assert t["avg_wait_s"] == 525.0  # 2100 / 4
    assert t["p90_wait_s"] == 900.0  # the 4th of 4 by nearest rank
    assert t["avg_service_s"] == 700.0  # 2100 / 3
    assert t["service_level"] == 0.75  # A002 waited past A's 10 min; B001's 15 min is within B's 15
    assert (t["rated"], t["unrated"], t["satisfaction"], t["bad_ratings"]) == (2, 1, 0.5, 1)
    assert t["bad_cases"] == 1 and rep["cases_known"] is True  # the 差评 opened its 核实整改 case
    assert (t["wait_overtime"], t["service_overtime"]) == (1, 1)  # A002; B001 (24 > 20 min)

    dept = by(rep["by_department"], "department")
    assert dept["市民政局"]["issued"] == 3 and dept["市场监管局"]["issued"] == 1
    assert dept["市场监管局"]["bad_ratings"] == 1 and dept["市民政局"]["satisfaction"] == 1.0
    cat = by(rep["by_category"], "category")
    assert (cat["A"]["issued"], cat["A"]["served"], cat["A"]["avg_wait_s"]) == (3, 2, 400.0)  # (360+780+60)/3

    win = by(rep["by_window"], "window")
    assert win[1]["issued"] is None  # windows issue nothing
    assert (win[1]["called"], win[1]["served"], win[1]["no_show"], win[1]["avg_wait_s"]) == (2, 1, 1, 570.0)
    assert (win[2]["called"], win[2]["served"], win[2]["avg_service_s"], win[2]["service_level"]) == (2, 2, 810.0, 1.0)
    assert (win[2]["satisfaction"], win[2]["unrated"]) == (0.0, 1)
    # Window 1: 12:00-13:00 and 16:30-17:00 unstaffed; window 2: 09:00-09:10.
    assert (win[1]["open_s"], win[1]["unstaffed_s"], win[2]["unstaffed_s"]) == (28800.0, 5400.0, 600.0)

    staff = by(rep["by_staff"], "name")
    assert set(staff) == {"李明", "王芳"}
    li, wang = staff["李明"], staff["王芳"]
    assert (li["staff"], li["department"], li["called"], li["served"], li["satisfaction"]) == (
        "0231",
        "市民政局",
        2,
        1,
        1.0,
    )
    assert (wang["served"], wang["bad_ratings"], wang["service_overtime"]) == (2, 1, 1)
    # 李明 08:55-12:00 and 13:00-16:30 = 395 min; 王芳 09:10 to the 17:00 close (no sign-out) = 470 min.
    assert (li["signed_in_s"], li["late_days"], li["early_s"]) == (23700.0, 0, 1800.0)
    assert (wang["signed_in_s"], wang["late_s"], wang["early_days"], wang["no_sign_out_days"]) == (28200.0, 600.0, 0, 1)

    att = by(rep["attendance"], "name")
    assert att["李明"]["first_in"] == "2026-11-23T08:55:00+08:00"
    assert att["李明"]["last_out"] == "2026-11-23T16:30:00+08:00"
    assert att["李明"]["windows"] == {"1": 23700.0}
    assert att["王芳"]["first_in"] == "2026-11-23T09:10:00+08:00"
    assert att["王芳"]["last_out"] is None and att["王芳"]["no_sign_out"] is True

    hours = by(rep["by_hour"], "hour")
    assert (hours[9]["issued"], hours[9]["avg_wait_s"], hours[10]["issued"]) == (3, 680.0, 1)  # (360+780+900)/3
    assert rep["ratings"] == {"5": 1, "4": 0, "3": 0, "2": 1, "1": 0, "unrated": 1}


async def test_monthly_report_has_the_day_and_every_other_day_empty(day: tuple[LiveHall, FakeClock]) -> None:
    live, _ = day
    r = await live.client.get("/api/v1/reports/monthly", params={"month": "2026-11"}, headers=live.auth("admin"))
    assert r.status_code == 200, r.text
    rep = r.json()
    days = by(rep["by_day"], "day")
    assert len(days) == 30
    assert days[DAY]["served"] == 3 and days[DAY]["avg_wait_s"] == 525.0
    assert sum(d["issued"] for d in rep["by_day"]) == 4
    li = by(rep["by_staff"], "name")["李明"]
    assert (li["days"], li["early_days"], li["signed_in_s"]) == (1, 1, 23700.0)
    x = await live.client.get(
        "/api/v1/reports/monthly",
        params={"month": "2026-11", "format": "xlsx", "lang": "en"},
        headers=live.auth("admin"),
    )
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames[:2] == ["Summary", "By day"]
    days_sheet = wb["By day"]
    assert days_sheet.max_row == 31 and [c.value for c in days_sheet[1]][:4] == ["Day", "Issued", "Called", "Served"]
    assert [c.value for c in days_sheet[24]][:4] == [DAY, 4, 4, 3]


async def test_reports_need_the_admin_token_and_a_real_day(day: tuple[LiveHall, FakeClock]) -> None:
    live, _ = day
    c = live.client
    assert (await c.get("/api/v1/reports/daily", params={"day": DAY}, headers=live.auth("display"))).status_code == 403
    bad = await c.get("/api/v1/reports/daily", params={"day": "2026-13-01"}, headers=live.auth("admin"))
    assert bad.status_code == 422
    bad = await c.get("/api/v1/reports/daily", params={"day": "2026-02-30"}, headers=live.auth("admin"))
    assert (bad.status_code, bad.json()["code"]) == (422, "bad_day")
    bad = await c.get("/api/v1/reports/monthly", params={"month": "2026-1"}, headers=live.auth("admin"))
    assert bad.status_code == 422


async def test_xlsx_and_csv_read_back(day: tuple[LiveHall, FakeClock], tmp_path: Path) -> None:
    live, _ = day
    admin = live.auth("admin")
    r = await live.client.get("/api/v1/reports/daily", params={"day": DAY, "format": "xlsx"}, headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    path = tmp_path / "day.xlsx"
    path.write_bytes(r.content)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "部门", "业务类别", "窗口", "工作人员", "分时", "考勤", "窗口空岗", "评价"]
    ws = wb["工作人员"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["姓名", "工号", "进驻部门"] and "好评率" in header and "迟到(分钟)" in header
    assert ws.freeze_panes == "A2"
    assert all((ws.column_dimensions[chr(ord("A") + i)].width or 0) >= 8 for i in range(5))
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["王芳"]["办结量"] == 2 and isinstance(rows["王芳"]["办结量"], int)
    assert rows["王芳"]["平均办理(分钟)"] == 13.5  # 810 s
    assert rows["李明"]["好评率"] == 1.0 and ws.cell(row=2, column=header.index("好评率") + 1).number_format == "0.0%"
    assert rows["李明"]["差评整改工单"] == 0 and rows["王芳"]["差评整改工单"] == 1  # 王芳's 差评 has its case
    total = wb["汇总"]
    assert [c.value for c in total[2]][:4] == [DAY, 4, 4, 3]

    r = await live.client.get(
        "/api/v1/reports/daily", params={"day": DAY, "format": "csv", "table": "by_window", "lang": "en"}, headers=admin
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    w1 = next(row for row in parsed if row["Window"] == "1")
    assert (w1["Called"], w1["No-show"], w1["Average wait (min)"], w1["Unstaffed (min)"]) == ("2", "1", "9.5", "90.0")
    assert w1["Issued"] == ""
    r = await live.client.get(
        "/api/v1/reports/daily",
        params={"day": DAY, "format": "csv", "table": "by_category", "lang": "en"},
        headers=admin,
    )
    cats = {row["Category"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
    assert (cats["A"]["Name"], cats["A"]["Department"], cats["A"]["Issued"]) == ("Citizen", "市民政局", "3")


async def test_cli_writes_the_report(day: tuple[LiveHall, FakeClock], tmp_path: Path) -> None:
    live, _ = day
    cfg_file = tmp_path / "hall.toml"
    cfg_file.write_text(to_toml(config_dict(store={"path": live.hall.cfg.store.path}, **OVER)), encoding="utf-8")
    out = tmp_path / "cli.xlsx"
    cmd = [sys.executable, "-m", "hallctl.cli", "-c", str(cfg_file), "report"]

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the hall under test serves on this event loop.
        return await asyncio.to_thread(
            subprocess.run, [*cmd, *args], capture_output=True, text=True, timeout=60, cwd=REPO
        )

    done = await cli("--day", DAY, "--format", "xlsx", "-o", str(out))
    assert done.returncode == 0, done.stderr
    ws = openpyxl.load_workbook(out)["窗口"]
    assert [c.value for c in ws[1]][:3] == ["窗口", "名称", "取号量"]
    done = await cli("--month", "2026-11", "--format", "csv", "--table", "by_staff", "--lang", "en")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout.lstrip("\ufeff"))))
    assert {r["Name"]: r["Served"] for r in rows} == {"李明": "1", "王芳": "2"}
    bad = await cli("--month", "2026-13")
    assert bad.returncode == 2 and "month" in bad.stderr


async def test_board_shows_only_public_columns(hall_factory: HallFactory) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI))
    live: LiveHall = await hall_factory(
        clock=clock, board={"columns": ["served", "satisfaction"], "show_staff_names": False}, **OVER
    )
    await script_day(live, clock)
    r = await live.client.get("/api/v1/reports/board", headers=live.auth("display"))
    assert r.status_code == 200, r.text
    b = r.json()
    y = b["yesterday"]
    assert y["period"] == DAY and y["total"] == {"served": 3, "satisfaction": 0.5}
    assert "by_staff" not in y and "by_staff" not in b["month"]
    assert by(y["by_window"], "window")[2] == {"window": 2, "name": "", "served": 2, "satisfaction": 0.0, "called": 2}
    assert b["month"]["total"]["served"] == 3
    kiosk = await live.client.get("/api/v1/reports/board", headers=live.auth("kiosk"))
    assert kiosk.status_code == 403


def test_bad_board_column_is_named() -> None:
    from hallctl import config
    from hallctl.config import ConfigError

    with pytest.raises(ConfigError) as exc:
        config.parse(config_dict(board={"columns": ["served", "salary"]}))
    assert any("board.columns" in line for line in exc.value.lines)
