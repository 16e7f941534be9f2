"""A daily or monthly report as XLSX (one sheet per breakdown) or CSV (one breakdown).

Headers are Chinese (``lang="zh"``) or English; numbers stay numbers: times in minutes
with one decimal, shares as fractions (XLSX shows them as percentages), counts as integers.
An empty cell is a figure that does not apply or has no data (no rating, no case table),
never a zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any, Literal

Kind = Literal["text", "int", "min", "ratio", "time"]
Column = tuple[str, str, str, Kind]  # key, zh, en, kind

FIGURES: tuple[Column, ...] = (
    ("issued", "取号量", "Issued", "int"),
    ("called", "叫号量", "Called", "int"),
    ("served", "办结量", "Served", "int"),
    ("no_show", "过号未到", "No-show", "int"),
    ("transferred", "转办", "Transferred", "int"),
    ("avg_wait_s", "平均等候(分钟)", "Average wait (min)", "min"),
    ("p90_wait_s", "90%等候不超过(分钟)", "90% waited within (min)", "min"),
    ("avg_service_s", "平均办理(分钟)", "Average service (min)", "min"),
    ("service_level", "等候达标率", "Service level", "ratio"),
    ("rated", "评价数", "Ratings", "int"),
    ("unrated", "未评价", "Unrated", "int"),
    ("satisfaction", "好评率", "Satisfaction", "ratio"),
    ("bad_ratings", "差评数", "Bad ratings", "int"),
    ("bad_cases", "差评整改工单", "Bad-rating cases", "int"),
    ("wait_overtime", "等候超时", "Waits over target", "int"),
    ("service_overtime", "办理超时", "Services over limit", "int"),
)
ATTENDANCE_SUM: tuple[Column, ...] = (
    ("days", "出勤天数", "Days present", "int"),
    ("signed_in_s", "在岗时长(分钟)", "Signed in (min)", "min"),
    ("late_days", "迟到次数", "Late arrivals", "int"),
    ("late_s", "迟到(分钟)", "Late (min)", "min"),
    ("early_days", "早退次数", "Early leaves", "int"),
    ("early_s", "早退(分钟)", "Early (min)", "min"),
    ("no_sign_out_days", "未签退次数", "No sign-out", "int"),
)

# sheet key -> (zh title, en title, leading columns, figure columns)
TABLES: dict[str, tuple[str, str, tuple[Column, ...], tuple[Column, ...]]] = {
    "total": ("汇总", "Summary", (("period", "统计期", "Period", "text"),), FIGURES),
    "by_day": ("按日", "By day", (("day", "日期", "Day", "text"),), FIGURES),
    "by_department": ("部门", "Departments", (("department", "进驻部门", "Department", "text"),), FIGURES),
    "by_category": (
        "业务类别",
        "Categories",
        (
            ("category", "类别", "Category", "text"),
            ("name", "名称", "Name", "text"),
            ("department", "进驻部门", "Department", "text"),
        ),
        FIGURES,
    ),
    "by_window": (
        "窗口",
        "Windows",
        (("window", "窗口", "Window", "int"), ("name", "名称", "Name", "text")),
        (
            *FIGURES,
            ("open_s", "开放时长(分钟)", "Open (min)", "min"),
            ("unstaffed_s", "空岗(分钟)", "Unstaffed (min)", "min"),
        ),
    ),
    "by_staff": (
        "工作人员",
        "Staff",
        (
            ("name", "姓名", "Name", "text"),
            ("staff", "工号", "Staff no.", "text"),
            ("department", "进驻部门", "Department", "text"),
        ),
        (*FIGURES, *ATTENDANCE_SUM),
    ),
    "by_hour": ("分时", "By hour", (("hour", "时段", "Hour", "int"),), FIGURES),
    "attendance": (
        "考勤",
        "Attendance",
        (
            ("day", "日期", "Day", "text"),
            ("name", "姓名", "Name", "text"),
            ("staff", "工号", "Staff no.", "text"),
            ("department", "进驻部门", "Department", "text"),
        ),
        (
            ("first_in", "首次签到", "First sign-in", "time"),
            ("last_out", "最后签退", "Last sign-out", "time"),
            ("signed_in_s", "在岗时长(分钟)", "Signed in (min)", "min"),
            ("windows", "各窗口在岗(分钟)", "Per window (min)", "text"),
            ("late_s", "迟到(分钟)", "Late (min)", "min"),
            ("early_s", "早退(分钟)", "Early leave (min)", "min"),
            ("no_sign_out", "未签退", "No sign-out", "text"),
        ),
    ),
    "unstaffed": (
        "窗口空岗",
        "Unstaffed windows",
        (("day", "日期", "Day", "text"), ("window", "窗口", "Window", "int")),
        (
            ("open_s", "开放时长(分钟)", "Open (min)", "min"),
            ("staffed_s", "有人在岗(分钟)", "Staffed (min)", "min"),
            ("unstaffed_s", "空岗(分钟)", "Unstaffed (min)", "min"),
        ),
    ),
    "ratings": (
        "评价",
        "Ratings",
        (("level", "评价", "Rating", "text"),),
        (("count", "数量", "Count", "int"),),
    ),
    # The city's cross-hall report (hallctl/central/reports.py): one row per hall, its sheet first.
    "by_hall": (
        "各中心",
        "Halls",
        (("hall", "中心编号", "Hall id", "text"), ("name", "名称", "Name", "text")),
        FIGURES,
    ),
}
LEVEL_NAMES = {
    "5": ("非常满意", "Very satisfied"),
    "4": ("满意", "Satisfied"),
    "3": ("基本满意", "Fair"),
    "2": ("不满意", "Dissatisfied"),
    "1": ("非常不满意", "Very dissatisfied"),
    "unrated": ("未评价", "Unrated"),
}


def _text(v: Any, lang: str) -> str:
    if isinstance(v, bool):
        return ("是" if v else "") if lang == "zh" else ("yes" if v else "")
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {round(float(s) / 60, 1)}" for k, s in v.items())
    return "" if v is None else str(v)


def cell(v: Any, kind: Kind, lang: str) -> Any:
    """One value as the sheet holds it: minutes from seconds, a time as HH:MM, None stays empty."""
    if v is None:
        return None
    if kind == "min":
        return round(float(v) / 60, 1)
    if kind == "ratio":
        return float(v)
    if kind == "int":
        return int(v)
    if kind == "time":
        return str(v)[11:16]
    return _text(v, lang)


def rows(report: Mapping[str, Any], table: str, lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    """The header and rows of one breakdown of ``report``."""
    _, _, lead, figs = TABLES[table]
    cols = (*lead, *figs)
    header = [zh if lang == "zh" else en for _, zh, en, _ in cols]
    if table == "total":
        src: list[Mapping[str, Any]] = [{"period": report["period"], **report["total"]}]
    elif table == "ratings":
        src = [{"level": LEVEL_NAMES[k][0 if lang == "zh" else 1], "count": n} for k, n in report["ratings"].items()]
    else:
        src = report.get(table, [])
    if table in ("by_category", "by_hall") and lang == "en":
        src = [{**r, "name": r.get("name_en") or r["name"]} for r in src]
    return header, [[cell(r.get(key), kind, lang) for key, _, _, kind in cols] for r in src]


def sheet_order(report: Mapping[str, Any]) -> list[str]:
    """The report's own ``sheets`` (the city's cross-hall report), else every hall breakdown."""
    if "sheets" in report:
        return list(report["sheets"])
    return [t for t in TABLES if t != "by_hall" and (t != "by_day" or report.get("kind") == "monthly")]


def to_csv(report: Mapping[str, Any], table: str = "by_window", lang: str = "zh") -> str:
    """One breakdown as CSV (UTF-8 with BOM so a spreadsheet opens the Chinese headers right; CRLF)."""
    header, body = rows(report, table, lang)
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(body)
    return out.getvalue()


def to_xlsx(report: Mapping[str, Any], lang: str = "zh") -> bytes:
    """Every breakdown, one sheet each: bold frozen header, widths set, numbers as numbers."""
    # Here, not at the top: a CSV needs none of openpyxl (nor the Pillow it loads).
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    first = True
    for table in sheet_order(report):
        zh, en, lead, figs = TABLES[table]
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        first = False
        ws.title = zh if lang == "zh" else en
        header, body = rows(report, table, lang)
        ws.append(header)
        for r in body:
            ws.append(r)
        kinds = [k for *_, k in (*lead, *figs)]
        fill = PatternFill("solid", fgColor="DDE7F3")
        for i, (title, kind) in enumerate(zip(header, kinds, strict=True), start=1):
            c = ws.cell(row=1, column=i)
            c.font = Font(bold=True)
            c.fill = fill
            c.alignment = Alignment(wrap_text=True, vertical="center")
            fmt = {"ratio": "0.0%", "min": "0.0", "int": "0"}.get(kind)
            if fmt is not None:
                for row in range(2, len(body) + 2):
                    ws.cell(row=row, column=i).number_format = fmt
            # A CJK character is about two columns wide.
            wide = max([_width(title), *(_width(_text(r[i - 1], lang)) for r in body)])
            ws.column_dimensions[get_column_letter(i)].width = min(40, max(8, wide + 2))
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)
