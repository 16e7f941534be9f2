"""Attendance and the event replay on their own: the hall calendar (holiday, 调休 working day), a sign-in
carried over from an earlier day, a forgotten sign-out, a transfer's follow-up.

These feed the report core event records directly, as the city's ingestion will (issue 16);
the expected figures are worked out by hand from the records.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from hallctl.reports.daily import daily
from hallctl.reports.model import EventRecord
from tests.core.core_helpers import SHANGHAI, make_config

HOURS = ("mon-fri 09:00-12:00", "mon-fri 13:00-17:00")
CFG = make_config(
    category=[
        {"prefix": "A", "name": "便民服务", "hours": HOURS, "target_wait_minutes": 10},
        {"prefix": "B", "name": "法人服务", "hours": HOURS, "target_wait_minutes": 15},
    ],
    window=[{"number": 1, "categories": ["A"]}, {"number": 2, "categories": ["B"]}],
    staff=[{"id": "0231", "name": "李明"}, {"id": "0232", "name": "王芳"}],
)


def t(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=SHANGHAI)


def sign(day: date, hhmm: str, window: int, staff: str | None) -> EventRecord:
    if staff is None:
        return EventRecord(t(day, hhmm), "signed_out", None, window, {"staff": "?"})
    return EventRecord(t(day, hhmm), "signed_in", None, window, {"staff": staff})


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_a_holiday_has_no_late_arrival_and_no_unstaffed_window() -> None:
    day = date(2026, 10, 1)  # 国庆节: the categories are closed
    rep = daily([sign(day, "10:00", 1, "0231"), sign(day, "11:00", 1, None)], CFG, day, t(day, "23:00"))
    (att,) = rep["attendance"]
    assert (att["signed_in_s"], att["late_s"], att["early_s"], att["opens"]) == (3600.0, 0.0, 0.0, None)
    assert rep["unstaffed"] == []
    assert by(rep["by_window"], "window")[1]["open_s"] == 0.0


def test_a_makeup_working_day_has_monday_hours() -> None:
    day = date(2026, 10, 10)  # a Saturday worked for the National Day holiday (调休上班)
    recs = [sign(day, "09:20", 1, "0231"), sign(day, "12:00", 1, None), sign(day, "13:00", 1, "0231")]
    rep = daily([*recs, sign(day, "16:00", 1, None)], CFG, day, t(day, "23:00"))
    att = by(rep["attendance"], "name")["李明"]
    assert (att["late_s"], att["early_s"]) == (1200.0, 3600.0)  # from 09:00, to 17:00
    assert att["signed_in_s"] == (160 + 180) * 60.0
    un = by(rep["unstaffed"], "window")
    # Window 1 open 7 h: missing 09:00-09:20 and 16:00-17:00; window 2 nobody all day.
    assert (un[1]["open_s"], un[1]["unstaffed_s"]) == (25200.0, 4800.0)
    assert un[2]["unstaffed_s"] == 25200.0


def test_a_sign_in_carried_from_yesterday_and_a_forgotten_sign_out() -> None:
    day = date(2026, 11, 24)  # Tuesday
    before = sign(date(2026, 11, 23), "16:00", 2, "0232")  # 王芳 never signed out on Monday
    recs = [
        before,
        sign(day, "08:50", 1, "0231"),  # 李明 signs in and never out
        EventRecord(t(day, "09:00"), "issued", "20261124-B001", None, {"number": "B001", "channel": "kiosk"}),
        EventRecord(t(day, "09:01"), "called", "20261124-B001", 2, {"number": "B001", "recall": 0}),
    ]
    rep = daily(recs, CFG, day, t(day, "20:00"))
    att = by(rep["attendance"], "name")
    # 王芳's Monday sign-in is Monday's attendance: no presence today, window 2 unstaffed all day,
    # although the engine still names her as window 2's staff (and so does the call's attribution).
    assert "王芳" not in att
    assert by(rep["unstaffed"], "window")[2]["unstaffed_s"] == 7 * 3600.0
    assert by(rep["by_staff"], "name")["王芳"]["called"] == 1
    li = att["李明"]
    assert (li["first_in"], li["last_out"], li["no_sign_out"]) == ("2026-11-24T08:50:00+08:00", None, True)
    assert li["signed_in_s"] == (8 * 60 + 10) * 60.0  # 08:50 to the 17:00 close, not to 20:00
    assert li["early_s"] == 0.0  # a missing sign-out is flagged, not counted as leaving early
    assert by(rep["unstaffed"], "window")[1]["unstaffed_s"] == 0.0


def test_a_sign_out_forgotten_until_the_next_morning_counts_to_the_close() -> None:
    mon, tue = date(2026, 11, 23), date(2026, 11, 24)
    recs = [sign(mon, "08:50", 1, "0231"), sign(tue, "08:45", 1, "0231"), sign(tue, "17:05", 1, None)]
    monday = by(daily(recs, CFG, mon, t(tue, "20:00"))["attendance"], "name")["李明"]
    assert (monday["signed_in_s"], monday["no_sign_out"], monday["last_out"]) == ((8 * 60 + 10) * 60.0, True, None)
    tuesday = by(daily(recs, CFG, tue, t(tue, "20:00"))["attendance"], "name")["李明"]
    assert (tuesday["first_in"], tuesday["last_out"]) == ("2026-11-24T08:45:00+08:00", "2026-11-24T17:05:00+08:00")
    assert (tuesday["late_s"], tuesday["early_s"], tuesday["signed_in_s"]) == (0.0, 0.0, (8 * 60 + 20) * 60.0)


def test_today_counts_only_up_to_now() -> None:
    day = date(2026, 11, 24)
    rep = daily([sign(day, "09:30", 1, "0231")], CFG, day, t(day, "10:00"))
    un = by(rep["unstaffed"], "window")
    assert (un[1]["open_s"], un[1]["unstaffed_s"]) == (3600.0, 1800.0)  # 09:00-10:00 open, 09:00-09:30 empty
    assert by(rep["attendance"], "name")["李明"]["signed_in_s"] == 1800.0


def test_a_transfer_follow_up_waits_from_the_transfer_and_is_not_a_new_visitor() -> None:
    day = date(2026, 11, 24)
    recs = [
        sign(day, "08:55", 1, "0231"),
        sign(day, "08:56", 2, "0232"),
        EventRecord(t(day, "09:00"), "issued", "20261124-A001", None, {"number": "A001", "channel": "kiosk"}),
        EventRecord(t(day, "09:05"), "called", "20261124-A001", 1, {"number": "A001", "recall": 0}),
        EventRecord(
            t(day, "09:10"),
            "transferred",
            "20261124-A001",
            1,
            {"number": "A001", "new_ticket": "20261124-B001", "to_category": "B", "to_window": 2},
        ),
        EventRecord(t(day, "09:12"), "called", "20261124-B001", 2, {"number": "B001", "recall": 0}),
        EventRecord(t(day, "09:13"), "serving", "20261124-B001", 2, {"number": "B001"}),
        EventRecord(t(day, "09:20"), "finished", "20261124-B001", 2, {"number": "B001", "service_s": 420.0}),
        EventRecord(t(day, "09:21"), "evaluated", "20261124-B001", 2, {"level": 4, "channel": "pad"}),
    ]
    rep = daily(recs, CFG, day, t(day, "20:00"))
    total = rep["total"]
    assert (total["issued"], total["called"], total["served"], total["transferred"]) == (1, 2, 1, 1)
    assert total["avg_wait_s"] == 210.0  # A001 5 min, B001 2 min (from the transfer, not the issue)
    cats = by(rep["by_category"], "category")
    assert (cats["A"]["issued"], cats["B"]["issued"], cats["B"]["served"]) == (1, 0, 1)
    staff = by(rep["by_staff"], "name")
    assert (staff["李明"]["transferred"], staff["王芳"]["served"], staff["王芳"]["satisfaction"]) == (1, 1, 1.0)
