"""Supervision commands (电子监察): list, acknowledge and resolve alerts; 好差评 follow-up cases.

Whoever acknowledges, resolves or moves a case on is named (``by``: the console fills it from
its session; a clerk's terminal from who is signed in) and the token that did it is recorded
with the note. A window token sees and handles its own windows' alerts only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from hallctl.commands.args import Args, Reasons, TicketArgs
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.commands.tickets import VISITOR_ONLY
from hallctl.context import HallContext
from hallctl.supervision.alerts import alert_view
from hallctl.supervision.cases import case_view

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
AlertState = Literal["open", "acknowledged", "resolved"]
CaseState = Literal["open", "verified", "closed"]
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class AlertListArgs(Args):
    state: tuple[AlertState, ...] = Field(default=(), max_length=3)
    kind: tuple[Kind, ...] = Field(default=(), max_length=20)
    window: int | None = Field(default=None, ge=1, le=9999, strict=True)
    since: AwareDatetime | None = None
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


class AlertActArgs(Args):
    alert_id: int = Field(ge=1)  # a path/topic parameter
    by: Name
    note: Note = ""


class CaseListArgs(Args):
    state: tuple[CaseState, ...] = Field(default=(), max_length=3)
    window: int | None = Field(default=None, ge=1, le=9999, strict=True)
    overdue: bool | None = Field(default=None, strict=True)
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


class CaseActArgs(Args):
    case_id: int = Field(ge=1)  # a path/topic parameter
    action: Literal["note", "verify", "close"]  # a path/topic parameter
    by: Name
    note: Note = ""


class ReasonArgs(TicketArgs):
    reasons: Reasons = Field(min_length=1)


def _scope(c: Call, window: int | None) -> tuple[int, ...] | None:
    """The windows a caller may see: a window token its own (narrowed by ``window``), others all or ``window``."""
    p = c.principal
    if p.role in ("window", "pad"):
        return tuple(w for w in p.windows if window is None or w == window)
    return None if window is None else (window,)


# Who handled an alert or a case and what they wrote: for the hall's own screens and console (HTTP),
# never through the broker (MQTT replies are readable by other ``hallctl/#`` clients), like staff names.
HANDLERS = ("acked_by", "ack_note", "resolved_by", "resolve_note", "verified_by", "closed_by")


def _for(c: Call, view: dict[str, Any]) -> dict[str, Any]:
    if c.transport.personal_data:
        return view
    out: dict[str, Any] = {k: (None if k in HANDLERS else v) for k, v in view.items()}
    if "notes" in view:
        out["notes"] = [{"at": n["at"], "by": None, "note": None} for n in view["notes"]]
    return out


ALERT_ERRORS = {403: ("wrong_window",), 404: ("unknown_alert",), 409: ("alert_resolved", "alert_acknowledged")}


@command(
    "alert.list",
    AlertListArgs,
    ("guide", "window", "display"),
    http=HttpRoute("POST", "/alerts/query"),
    mqtt="alert/list",
)
async def _list(ctx: HallContext, a: AlertListArgs, c: Call) -> dict[str, Any]:
    rows = await ctx.supervision.find(
        states=a.state, kinds=a.kind, windows=_scope(c, a.window), since=a.since, limit=a.limit
    )
    return {"alerts": [_for(c, alert_view(r)) for r in rows]}


@command(
    "alert.ack",
    AlertActArgs,
    ("guide", "window"),
    http=HttpRoute("POST", "/alerts/{alert_id}/ack", errors=ALERT_ERRORS),
    mqtt="alert/{alert_id}/ack",
)
async def _ack(ctx: HallContext, a: AlertActArgs, c: Call) -> dict[str, Any]:
    row = await ctx.supervision.acknowledge(a.alert_id, a.by, a.note, c.principal.token_id, _scope(c, None))
    return {"alert": _for(c, alert_view(row))}


@command(
    "alert.resolve",
    AlertActArgs,
    ("guide", "window"),
    http=HttpRoute("POST", "/alerts/{alert_id}/resolve", errors=ALERT_ERRORS),
    mqtt="alert/{alert_id}/resolve",
)
async def _resolve(ctx: HallContext, a: AlertActArgs, c: Call) -> dict[str, Any]:
    row = await ctx.supervision.resolve(a.alert_id, a.by, a.note, c.principal.token_id, _scope(c, None))
    return {"alert": _for(c, alert_view(row))}


@command(
    "case.list",
    CaseListArgs,
    ("guide",),
    http=HttpRoute("POST", "/cases/query"),
    mqtt="case/list",
)
async def _cases(ctx: HallContext, a: CaseListArgs, c: Call) -> dict[str, Any]:
    rows, today = await ctx.supervision.cases.find(
        states=a.state, windows=_scope(c, a.window), overdue=a.overdue, limit=a.limit
    )
    return {"cases": [_for(c, case_view(k, today)) for k in rows], "today": today.isoformat()}


@command(
    "case.act",
    CaseActArgs,
    ("admin",),
    http=HttpRoute(
        "POST",
        "/cases/{case_id}/{action}",
        errors={404: ("unknown_case",), 409: ("case_closed", "case_verified")},
    ),
    mqtt="case/{case_id}/{action}",
)
async def _case_act(ctx: HallContext, a: CaseActArgs, c: Call) -> dict[str, Any]:
    cases = ctx.supervision.cases
    k = await cases.act(a.case_id, a.action, a.by, a.note, c.principal.token_id)
    return {"case": _for(c, case_view(k, cases.today()))}


@command(
    "evaluation.reason",
    ReasonArgs,
    ("pad",),
    http=HttpRoute(
        "POST",
        "/tickets/{ticket_id}/evaluation/reason",
        errors={
            403: ("wrong_window", "rating_from_visitor_only"),
            404: ("no_case",),
            409: ("reason_given",),
            422: ("bad_reason",),
        },
    ),
    mqtt="ticket/{ticket_id}/evaluation_reason",
    refusal=VISITOR_ONLY,
)
async def _reason(ctx: HallContext, a: ReasonArgs, c: Call) -> dict[str, Any]:
    cases = ctx.supervision.cases
    k = await cases.give_reason(a.ticket_id, a.reasons, _scope(c, None))
    return {"case": {"id": k.id, "number": k.number, "reasons": list(k.reasons), "due_day": k.due_day.isoformat()}}
