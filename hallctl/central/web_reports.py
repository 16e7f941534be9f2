"""The central's report routes: a hall's own report or the city's, as JSON, CSV or XLSX (docs/city.md#reports).

The same query parameters as the hall's ``/api/v1/reports/*`` (docs/api.md), plus ``hall``.
Errors answer ``{"code", "message", "message_en"}`` with the status of their
:class:`hallctl.errors.HallctlError` type, as the hall's API does.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations.
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from hallctl.central import reports
from hallctl.central.config import CentralConfig
from hallctl.central.store import CentralStore
from hallctl.errors import HallctlError, Refused

Format = Literal["json", "csv", "xlsx"]
Lang = Literal["zh", "en"]
DAY = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def file_name(report: Mapping[str, Any]) -> str:
    """``xicheng-daily-2026-11-23`` for a hall, ``city-daily-2026-11-23`` across halls."""
    return f"{report['hall'] or 'city'}-{report['kind']}-{report['period']}"


def default_table(report: Mapping[str, Any]) -> str:
    return "by_hall" if report.get("scope") == "city" else "by_window"


def render(report: Mapping[str, Any], fmt: Format, table: str | None, lang: Lang) -> tuple[bytes, str, str]:
    """(body, media type, file name) of ``report`` in ``fmt``; Refused for a CSV table the report has not."""
    # Loaded on the first export only, as at the hall: openpyxl (and Pillow) are large.
    from hallctl.reports import export

    name = file_name(report)
    if fmt == "xlsx":
        return export.to_xlsx(report, lang), XLSX, f"{name}.xlsx"
    t = table or default_table(report)
    if t not in export.sheet_order(report):
        raise Refused(
            "bad_table",
            f"此报表没有这个表：{t}（可选：{', '.join(export.sheet_order(report))}）",
            f"this report has no table {t} (it has: {', '.join(export.sheet_order(report))})",
        )
    return export.to_csv(report, t, lang).encode(), "text/csv; charset=utf-8", f"{name}-{t}.csv"


def _problem(exc: HallctlError) -> JSONResponse:
    return JSONResponse(
        {"code": exc.code, "message": exc.message, "message_en": exc.message_en},
        status_code=exc.http_status,
    )


def report_router(cfg: CentralConfig, reader: CentralStore) -> APIRouter:
    api = APIRouter(prefix="/api/v1/reports", tags=["reports"])
    tz = ZoneInfo(cfg.http.timezone)

    async def answer(
        kind: reports.Kind, period: str, hall: str | None, fmt: Format, table: str | None, lang: Lang
    ) -> Response:
        try:
            try:
                rep = await reports.report(reader, cfg, kind, period, hall, datetime.now(tz))
            except ValueError as exc:  # 2026-02-30: the pattern lets it through
                raise Refused("bad_day", f"没有这一天：{period}", f"no such day: {period}") from exc
            if fmt == "json":
                return JSONResponse(rep)
            body, media, name = render(rep, fmt, table, lang)
        except HallctlError as exc:
            return _problem(exc)
        return Response(
            body, media_type=media, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        )

    @api.get("/daily")
    async def daily_report(
        day: Annotated[str | None, Query(pattern=DAY, description="day, default today ([http] timezone)")] = None,
        hall: Annotated[str | None, Query(description="one hall's own report; none: across halls")] = None,
        format: Format = "json",
        table: Annotated[str | None, Query(description="the breakdown a CSV holds")] = None,
        lang: Lang = "zh",
    ) -> Response:
        """A day's report (日报) of one hall, or across every hall with a config (``by_hall`` first)."""
        d = day or datetime.now(tz).date().isoformat()
        return await answer("daily", d, hall, format, table, lang)

    @api.get("/monthly")
    async def monthly_report(
        month: Annotated[str | None, Query(pattern=MONTH, description="YYYY-MM, default this month")] = None,
        hall: Annotated[str | None, Query(description="one hall's own report; none: across halls")] = None,
        format: Format = "json",
        table: Annotated[str | None, Query(description="the breakdown a CSV holds")] = None,
        lang: Lang = "zh",
    ) -> Response:
        """A month's report (月报): the same figures over its days, with a row per day."""
        m = month or f"{datetime.now(tz):%Y-%m}"
        return await answer("monthly", m, hall, format, table, lang)

    return api
