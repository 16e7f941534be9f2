"""The admin console's supervision (监察) and report (报表) routes, under ``/api/v1/admin``.

A person logged in to the console acts as themselves: the name written on an alert or a
case is the session's account, never a name typed in a form, and every action is also an
audit row. The work is the supervision service's (the same methods ``alert.ack``,
``alert.resolve``, ``case.list`` and ``case.act`` call) and the reports are the same code
as ``/api/v1/reports`` (:func:`hallctl.http.reports.daily_for`, :func:`~hallctl.http.reports.rendered`).

Roles: everyone logged in sees; ``supervisor`` and ``hall_admin`` act (with ``[admin]
require_totp``, only with a second factor, as for every other change).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hallctl.admin import AdminConsole, Session
from hallctl.context import HallContext
from hallctl.errors import Forbidden
from hallctl.http.admin import session_of
from hallctl.http.reports import DAY, MONTH, Format, Lang, Table, daily_for, monthly_for, rendered
from hallctl.supervision.alerts import alert_view
from hallctl.supervision.cases import case_view

ACTORS = ("hall_admin", "supervisor")
AlertState = Literal["open", "acknowledged", "resolved"]
CaseState = Literal["open", "verified", "closed"]


class Note(BaseModel):
    """Only a note: the person is the session's account, so a ``by`` in the body is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


def require_act(console: AdminConsole, s: Session) -> None:
    """Supervisors and hall admins handle alerts and cases; read-only accounts only look."""
    if s.role not in ACTORS:
        raise Forbidden(
            "forbidden", "只有监察员或大厅管理员可以处理", "only a supervisor or a hall admin may handle this"
        )
    if console.cfg.admin.require_totp and not s.totp_enabled:
        raise Forbidden("totp_required", "请先启用动态验证码（双因素认证）", "enrol a TOTP second factor first")


def backoffice_router(ctx: HallContext, console: AdminConsole) -> APIRouter:
    api = APIRouter(prefix="/api/v1/admin", tags=["admin"], include_in_schema=False)
    sup = ctx.supervision

    # ---- 电子监察: alerts ----------------------------------------------------------------------

    @api.get("/alerts")
    async def alerts(
        request: Request,
        state: Annotated[list[AlertState], Query(max_length=3)] = [],  # noqa: B006 (FastAPI copies it)
        window: Annotated[int | None, Query(ge=1, le=9999)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        session_of(console, request)
        rows = await sup.find(states=tuple(state), windows=None if window is None else (window,), limit=limit)
        return {"alerts": [alert_view(a) for a in rows], "escalate_max_level": ctx.cfg.supervision.escalate_max_level}

    @api.post("/alerts/{alert_id}/{action}")
    async def alert_act(
        request: Request, alert_id: int, action: Literal["ack", "resolve"], body: Note
    ) -> dict[str, Any]:
        s = session_of(console, request, write=True)
        require_act(console, s)
        before = await ctx.store.alert(alert_id)
        handle = sup.acknowledge if action == "ack" else sup.resolve
        row = await handle(alert_id, s.name, body.note.strip(), None)
        await console.store.audit(
            console.clock(),
            s.name,
            f"alert.{action}",
            f"alert:{alert_id}",
            None if before is None else {"state": before.state},
            {"state": row.state, "note": body.note.strip()},
        )
        return {"alert": alert_view(row)}

    # ---- 好差评 cases -------------------------------------------------------------------------------

    @api.get("/cases")
    async def cases(
        request: Request,
        state: Annotated[list[CaseState], Query(max_length=3)] = [],  # noqa: B006
        overdue: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        session_of(console, request)
        rows, today = await sup.cases.find(states=tuple(state), overdue=overdue, limit=limit)
        reasons = {r.name: r.name_en for r in ctx.cfg.supervision.bad_rating_reasons}
        return {"cases": [case_view(k, today) for k in rows], "today": today.isoformat(), "reasons_en": reasons}

    @api.post("/cases/{case_id}/{action}")
    async def case_act(
        request: Request, case_id: int, action: Literal["note", "verify", "close"], body: Note
    ) -> dict[str, Any]:
        s = session_of(console, request, write=True)
        require_act(console, s)
        before = await sup.cases.get(case_id)
        note = body.note.strip()
        k = await sup.cases.act(case_id, action, s.name, note, None)
        await console.store.audit(
            console.clock(),
            s.name,
            f"case.{action}",
            f"case:{case_id}",
            {"state": before.state},
            {"state": k.state, "note": note},
        )
        return {"case": case_view(k, sup.cases.today())}

    # ---- 统计报表 --------------------------------------------------------------------------------------

    async def answer(s: Session, report: dict[str, Any], fmt: Format, table: Table, lang: Lang) -> Response:
        if fmt == "json":  # the console's English view names the hall in English too
            return rendered({**report, "hall_name_en": ctx.cfg.hall.name_en or report["hall_name"]}, fmt, table, lang)
        # A file leaves the console with staff names and attendance in it: audited, as audit exports are.
        after = {"period": report["period"], "format": fmt, "table": table if fmt == "csv" else "all"}
        await console.store.audit(console.clock(), s.name, "report.export", f"report:{report['kind']}", None, after)
        return rendered(report, fmt, table, lang)

    @api.get("/reports/daily")
    async def daily(
        request: Request,
        day: Annotated[str | None, Query(pattern=DAY)] = None,
        format: Format = "json",
        table: Table = "by_window",
        lang: Lang = "zh",
    ) -> Response:
        s = session_of(console, request)
        return await answer(s, await daily_for(ctx, day), format, table, lang)

    @api.get("/reports/monthly")
    async def monthly(
        request: Request,
        month: Annotated[str | None, Query(pattern=MONTH)] = None,
        format: Format = "json",
        table: Table = "by_window",
        lang: Lang = "zh",
    ) -> Response:
        s = session_of(console, request)
        return await answer(s, await monthly_for(ctx, month), format, table, lang)

    return api
