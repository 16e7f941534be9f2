"""A day's statistics as lines a person reads in a terminal (`hallctl stats`), Chinese or English.

The figures are :func:`hallctl.reports.stats.summarize`'s; this module only words them:
no ``None`` reaches the reader (a figure with nothing to count is a dash), durations are
minutes and seconds, shares are percentages, and windows, categories and staff are named.
"""

from __future__ import annotations

from typing import Any

from hallctl.config import Config

DASH = "—"


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return DASH
    m, s = divmod(round(seconds), 60)
    if lang == "en":
        return f"{m} min {s:02d} s" if m else f"{s} s"
    return f"{m}分{s:02d}秒" if m else f"{s}秒"


def _share(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.0f}%"


def _line(s: dict[str, Any], lang: str, *, service: bool, desk: bool = False) -> str:
    """One row of figures; a window's or clerk's row (``desk``) counts the visitors called there."""
    if lang == "en":
        parts = [
            f"called {s['called']}" if desk else f"issued {s['issued']}",
            f"done {s['done']}",
            f"no-show {s['no_show']}",
            f"avg wait {_duration(s['avg_wait_s'], lang)}",
            f"p90 wait {_duration(s['p90_wait_s'], lang)}",
            f"within target {_share(s['service_level'])}",
        ]
        if service:
            parts.append(f"avg service {_duration(s['avg_service_s'], lang)}")
        parts.append(f"satisfaction {_share(s['satisfaction'])} ({s['evaluations']} rated, {s['unrated']} unrated)")
        return ", ".join(parts)
    parts = [
        f"叫号 {s['called']}" if desk else f"取号 {s['issued']}",
        f"办结 {s['done']}",
        f"过号 {s['no_show']}",
        f"平均等候 {_duration(s['avg_wait_s'], lang)}",
        f"90%等候 {_duration(s['p90_wait_s'], lang)}",
        f"等候达标率 {_share(s['service_level'])}",
    ]
    if service:
        parts.append(f"平均办理 {_duration(s['avg_service_s'], lang)}")
    parts.append(f"好评率 {_share(s['satisfaction'])}（已评价 {s['evaluations']}，未评价 {s['unrated']}）")
    return "，".join(parts)


def render(result: dict[str, Any], cfg: Config, lang: str = "zh") -> list[str]:
    """The report's lines: the hall's total, then one line per category, window and staff member."""
    en = lang == "en"
    hall = (cfg.hall.name_en or cfg.hall.name) if en else cfg.hall.name
    lines = [f"{hall} {result['day']}", "  " + _line(result["total"], lang, service=True)]
    if not result["total"]["issued"]:
        lines.append("  no tickets issued on this day" if en else "  当天没有取号")
        return lines
    sep = ": " if en else "："
    categories = {c.prefix: (c.name_en or c.name) if en else c.name for c in cfg.category}
    lines.append("By category:" if en else "按业务类别：")
    for prefix, s in result["by_category"].items():
        lines.append(f"  {prefix} {categories.get(prefix, '')}{sep}" + _line(s, lang, service=False))
    windows = {str(w.number): w.name for w in cfg.window}
    lines.append("By window:" if en else "按窗口：")
    for number, s in result["by_window"].items():
        label = f"window {number}" if en else f"{number}号窗口"
        name = windows.get(number) or ""
        lines.append(
            f"  {label}{' ' + name if name and name != label else ''}{sep}" + _line(s, lang, service=True, desk=True)
        )
    staff = {st.id: st.name for st in cfg.staff}
    if result["by_staff"]:
        lines.append("By staff member:" if en else "按工作人员：")
        for sid, s in result["by_staff"].items():
            lines.append(f"  {staff.get(sid, sid)}{sep}" + _line(s, lang, service=True, desk=True))
    green = result.get("green_channel") or {}
    if green:
        listed = ", ".join(f"{k} {v}" for k, v in green.items())
        lines.append(f"Green channel: {listed}" if en else f"绿色通道：{listed}")
    return lines
