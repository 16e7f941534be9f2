"""Report routes: daily and monthly reports (JSON, CSV, XLSX) for the admin, the 日公示 board's figures for a display.

The full reports name staff members and their attendance, so they need the admin token.
The board (``/board``) shows only what ``[board]`` makes public, to a display token as the
big screen does.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and ``Auth`` is local.
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal, assert_never
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from hallctl.auth import Principal
from hallctl.context import HallContext
from hallctl.engine import business_day
from hallctl.errors import Refused
from hallctl.reports import source

Format = Literal["json", "csv", "xlsx"]
Lang = Literal["zh", "en"]
Table = Literal[
    "total",
    "by_day",
    "by_department",
    "by_category",
    "by_window",
    "by_staff",
    "by_hour",
    "attendance",
    "unstaffed",
    "ratings",
]
DAY = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
BOARD_TTL_S = 60.0
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def rendered(report: dict[str, Any], fmt: Format, table: str, lang: str) -> Response:
    """``report`` as the format asked for; a file format comes as an attachment named after the hall and period."""
    name = f"{report['hall']}-{report['kind']}-{report['period']}"
    if fmt == "json":
        return JSONResponse(report)
    # Loaded on the first export only: openpyxl (and Pillow, which it loads) cost a serving daemon
    # memory it does not need otherwise (tests/core/test_footprint_imports.py).
    from hallctl.reports import export

    if fmt == "csv":
        body = export.to_csv(report, table, lang)
        return Response(
            body.encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}-{table}.csv"},
        )
    if fmt == "xlsx":
        return Response(
            export.to_xlsx(report, lang),
            media_type=XLSX,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}.xlsx"},
        )
    assert_never(fmt)


def _public(rows: list[Mapping[str, Any]], lead: tuple[str, ...], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**{k: r[k] for k in lead}, **{c: r.get(c) for c in columns}} for r in rows]


def board_view(report: Mapping[str, Any], ctx: HallContext) -> dict[str, Any]:
    """What the board may show of ``report``: the ``[board]`` columns, staff by name only (or not at all)."""
    b = ctx.cfg.board
    cols = tuple(b.columns)
    out: dict[str, Any] = {
        "period": report["period"],
        "from": report["from"],
        "to": report["to"],
        "total": {c: report["total"].get(c) for c in cols},
        "by_window": _public(report["by_window"], ("window", "name"), (*cols, "called")),
    }
    if b.show_staff_names:
        served = [r for r in report["by_staff"] if r["called"] or r["days"]]
        out["by_staff"] = _public(served, ("name", "department"), cols)
    if b.charts:
        out["by_hour"] = [
            {"hour": r["hour"], "avg_wait_s": r["avg_wait_s"], "issued": r["issued"]} for r in report["by_hour"]
        ]
        out["ratings"] = report["ratings"]
    return out


async def daily_for(ctx: HallContext, day: str | None) -> dict[str, Any]:
    """The report of ``day`` (YYYY-MM-DD, default today): for the token route and the admin console's."""
    now = ctx.service.clock()
    try:
        d = date.fromisoformat(day) if day else business_day(now, ctx.cfg)
    except ValueError as exc:  # 2026-02-30: the pattern lets it through
        raise Refused("bad_day", f"没有这一天：{day}", f"no such day: {day}") from exc
    return await source.daily_report(ctx.store, ctx.cfg, d, now)


async def monthly_for(ctx: HallContext, month: str | None) -> dict[str, Any]:
    """The report of ``month`` (YYYY-MM, default this month)."""
    now = ctx.service.clock()
    m = month or f"{business_day(now, ctx.cfg):%Y-%m}"
    return await source.monthly_report(ctx.store, ctx.cfg, m, now)


def report_router(ctx: HallContext, principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/reports", tags=["reports"])
    Auth = Annotated[Principal, Depends(principal)]

    @api.get("/daily")
    async def daily_report(
        p: Auth,
        day: Annotated[str | None, Query(pattern=DAY, description="business day, default today")] = None,
        format: Format = "json",
        table: Table = "by_window",
        lang: Lang = "zh",
    ) -> Response:
        """A business day's report (日报); ``table`` picks the breakdown a CSV holds, XLSX has them all."""
        p.require("admin")
        return rendered(await daily_for(ctx, day), format, table, lang)

    @api.get("/monthly")
    async def monthly_report(
        p: Auth,
        month: Annotated[str | None, Query(pattern=MONTH, description="YYYY-MM, default this month")] = None,
        format: Format = "json",
        table: Table = "by_window",
        lang: Lang = "zh",
    ) -> Response:
        """A month's report (月报): the same figures over its business days, with a row per day."""
        p.require("admin")
        return rendered(await monthly_for(ctx, month), format, table, lang)

    # Every board display asks every few minutes, and a busy month costs about a second and a
    # half of CPU (bench/reports.py): the displays share one answer for BOARD_TTL_S.
    cached: dict[str, Any] = {}

    @api.get("/board")
    async def board(p: Auth) -> dict[str, Any]:
        """The 日公示 board: yesterday's and this month's public figures per window (and staff member)."""
        p.require("display")
        now = ctx.service.clock()
        today = business_day(now, ctx.cfg)  # the service's day rolls over at its next decision
        hit = cached.get("board")
        if hit is not None and hit[0] == today and time.monotonic() - hit[1] < BOARD_TTL_S:
            body: dict[str, Any] = hit[2]
            return body
        yesterday = today - timedelta(days=1)
        day = await source.daily_report(ctx.store, ctx.cfg, yesterday, now)
        month = await source.monthly_report(ctx.store, ctx.cfg, f"{today:%Y-%m}", now)
        body = {
            "hall_name": ctx.cfg.hall.name,
            "columns": list(ctx.cfg.board.columns),
            "show_staff_names": ctx.cfg.board.show_staff_names,
            "charts": ctx.cfg.board.charts,
            "yesterday": board_view(day, ctx),
            "month": board_view(month, ctx),
        }
        cached["board"] = (today, time.monotonic(), body)
        return body

    return api
