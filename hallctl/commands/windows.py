"""Window commands: calling, serving, transfers, pause, staff sign-in, the visitor's rating."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hallctl.commands.args import CallArgs, EvaluateArgs, SignInArgs, TransferArgs, WindowArgs
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.commands.tickets import VISITOR_ONLY, rate, ticket_answer
from hallctl.context import HallContext
from hallctl.errors import Forbidden
from hallctl.service import HallService

# ---- windows ----------------------------------------------------------------------------------


def _window_ticket_command(
    name: str,
    http: str,
    action: Callable[[HallService, int], Awaitable[Any]],
    errors: Mapping[int, tuple[str, ...]],
) -> None:
    """Register a window action that answers with the ticket it touched."""

    async def handler(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
        return {"ticket": ticket_answer(ctx.service, await action(ctx.service, a.window))}

    verb = name.removeprefix("window.")
    command(
        name,
        WindowArgs,
        ("window",),
        window_scoped=True,
        http=HttpRoute("POST", f"/windows/{{window}}/{http}", errors={404: ("unknown_window",), **errors}),
        mqtt=f"window/{{window}}/{verb}",
    )(handler)


_CURRENT: Mapping[int, tuple[str, ...]] = {409: ("no_current_ticket",)}
_window_ticket_command(
    "window.call_next",
    "call-next",
    HallService.call_next,
    {409: ("window_busy", "window_paused", "not_signed_in", "current_not_started")},
)
_window_ticket_command(
    "window.recall", "recall", HallService.recall, {409: ("no_current_ticket", "recall_too_soon", "not_signed_in")}
)
_window_ticket_command("window.start", "start", HallService.start_service, _CURRENT)
_window_ticket_command("window.finish", "finish", HallService.finish, _CURRENT)
_window_ticket_command("window.no_show", "no-show", HallService.no_show, _CURRENT)
# A clerk may ask for a rating (the pad asks the visitor again), never give one.
_window_ticket_command(
    "window.request_evaluation",
    "request-evaluation",
    HallService.request_evaluation,
    {409: ("already_evaluated", "no_ticket_to_evaluate")},
)


def _window_http(action: str, status: int = 200, **errors: tuple[str, ...]) -> HttpRoute:
    """``errors``: codes by status (``e409=(...)``); unknown_window (404) is added."""
    by_status = {int(k.removeprefix("e")): v for k, v in errors.items()}
    by_status[404] = ("unknown_window", *by_status.get(404, ()))
    return HttpRoute("POST", f"/windows/{{window}}/{action}", status, errors=by_status)


@command(
    "window.call",
    CallArgs,
    ("window",),
    window_scoped=True,
    http=_window_http(
        "call",
        e403=("override_admin_only",),
        e404=("unknown_ticket",),
        e409=("window_busy", "ticket_not_waiting", "not_for_this_window", "not_signed_in", "current_not_started"),
    ),
    mqtt="window/{window}/call",
)
async def _call(ctx: HallContext, a: CallArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    p = c.principal
    override_by = None
    if a.override:
        if p.role != "admin":
            raise Forbidden("override_admin_only", "只有管理员可以越权叫号", "only an admin may override")
        override_by = f"token {p.token_id} {p.label}".strip() if p.token_id is not None else p.label or "admin"
    return {"ticket": ticket_answer(svc, await svc.call(a.window, a.number, override_by=override_by))}


@command(
    "window.transfer",
    TransferArgs,
    ("window",),
    window_scoped=True,
    http=_window_http("transfer", e404=("unknown_category",), e409=("no_current_ticket",), e422=("bad_transfer",)),
    mqtt="window/{window}/transfer",
)
async def _transfer(ctx: HallContext, a: TransferArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    note = a.note.strip() if a.note else None
    return {"ticket": ticket_answer(svc, await svc.transfer(a.window, a.to_category, a.to_window, note))}


def _window_state_command(name: str, http: str, action: Callable[[HallService, int], Awaitable[None]]) -> None:
    """Register a window action that answers with the window's state after it."""

    async def handler(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
        await action(ctx.service, a.window)
        return {"window": ctx.service.window_state(a.window).to_dict()}

    verb = name.removeprefix("window.")
    command(
        name, WindowArgs, ("window",), window_scoped=True, http=_window_http(http), mqtt=f"window/{{window}}/{verb}"
    )(handler)


_window_state_command("window.pause", "pause", lambda svc, w: svc.pause(w, True))
_window_state_command("window.resume", "resume", lambda svc, w: svc.pause(w, False))
_window_state_command("window.sign_out", "sign-out", lambda svc, w: svc.sign_in(w, None))


@command(
    "window.sign_in",
    SignInArgs,
    ("window",),
    window_scoped=True,
    http=_window_http("sign-in", e404=("unknown_staff",)),
    mqtt="window/{window}/sign_in",
)
async def _sign_in(ctx: HallContext, a: SignInArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    await svc.sign_in(a.window, a.staff)
    return {"window": svc.window_state(a.window).to_dict()}


@command(
    "window.evaluate",
    EvaluateArgs,
    ("pad",),
    window_scoped=True,
    http=_window_http(
        "evaluation",
        201,
        e403=("rating_from_visitor_only",),
        e404=("unknown_ticket",),
        e409=("already_evaluated", "no_ticket_to_evaluate", "ticket_not_served"),
        e422=("bad_level", "ticket_not_at_window"),
    ),
    mqtt="window/{window}/evaluate",
    refusal=VISITOR_ONLY,
)
async def _evaluate(ctx: HallContext, a: EvaluateArgs, c: Call) -> dict[str, Any]:
    return await rate(ctx, a.window, a.level, a.ticket_id, a.reasons)
