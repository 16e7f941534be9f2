"""Commands, registered once and served on every transport (Moonraker's habit).

The HTTP API and the MQTT ``cmd/...`` handler both call :func:`dispatch`, so
argument validation, permissions and error mapping exist in one place. A
command's arguments are a pydantic model; its handler returns a JSON-able dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hallctl.auth import Principal
from hallctl.context import HallContext
from hallctl.errors import HallctlError, Refused
from hallctl.service import HallService, IssueOutcome
from hallctl.views import ticket_view


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


class IssueArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    priority: Literal["green", "normal"] | None = None
    priority_reason: Literal["elderly", "disabled", "pregnant", "serviceman", "other"] | None = None
    offer: str | None = Field(default=None, max_length=64)
    kiosk: str | None = Field(default=None, max_length=32)


class WindowArgs(Args):
    window: int = Field(ge=1, le=9999)


class CallArgs(WindowArgs):
    number: str = Field(min_length=2, max_length=32)


class TransferArgs(WindowArgs):
    to_category: str | None = Field(default=None, min_length=1, max_length=3)
    to_window: int | None = Field(default=None, ge=1, le=9999)


class SignInArgs(WindowArgs):
    staff: str = Field(min_length=1, max_length=32)


class EvaluateArgs(WindowArgs):
    level: int = Field(ge=1, le=5)
    ticket_id: str | None = Field(default=None, max_length=64)
    reasons: tuple[str, ...] = ()


class DisplayArgs(Args):
    display: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=64)
    seconds: float | None = Field(default=None, gt=0, le=3600)


class ClimateArgs(Args):
    zone: str = Field(min_length=1, max_length=32)
    mode: Literal["auto", "off", "cool", "heat", "dry", "fan_only"] | None = None
    target: float | None = None


Handler = Callable[[HallContext, Any, Principal], Awaitable[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    args: type[Args]
    roles: tuple[str, ...]
    handler: Handler
    window_scoped: bool = False


COMMANDS: dict[str, Command] = {}


def command(
    name: str, args: type[Args], roles: tuple[str, ...], *, window_scoped: bool = False
) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, args, roles, fn, window_scoped)
        return fn

    return wrap


class CommandError(HallctlError):
    http_status = 422
    title = "Invalid command"


def parse_args(cmd: Command, raw: dict[str, Any]) -> Args:
    try:
        return cmd.args.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise CommandError("invalid_arguments", details) from exc


async def dispatch(ctx: HallContext, name: str, raw: dict[str, Any], principal: Principal) -> dict[str, Any]:
    cmd = COMMANDS.get(name)
    if cmd is None:
        raise CommandError("unknown_command", f"unknown command {name!r}")
    args = parse_args(cmd, raw)
    principal.require(*cmd.roles)
    if cmd.window_scoped:
        assert isinstance(args, WindowArgs)
        principal.require_window(args.window)
    return await cmd.handler(ctx, args, principal)


def channel_for(p: Principal) -> str:
    """How a ticket came to be, for statistics: the kiosk screen, a guide (导办), or other software."""
    return {"kiosk": "kiosk", "guide": "guide"}.get(p.role, "api")


def _ticket(svc: HallService, t: Any) -> dict[str, Any] | None:
    return ticket_view(t) if t is not None else None


async def issue_ticket(
    svc: HallService, a: IssueArgs, p: Principal, idempotency_key: str | None = None
) -> IssueOutcome:
    """Issue for every transport; with ``idempotency_key`` a retry gets the first ticket back."""
    if a.priority == "green" and p.role not in ("guide", "window", "admin"):
        raise Refused(
            "priority_not_allowed",
            "绿色通道需由导办或窗口人员办理",
            "only a guide or clerk can grant the green channel",
        )

    def render(o: IssueOutcome) -> tuple[int, dict[str, Any]]:
        return 201, ticket_view(o.ticket, waiting_ahead=o.waiting_ahead, qr=o.qr)

    if a.offer:
        return await svc.issue_from_offer(
            a.offer,
            a.category,
            idempotency_key=idempotency_key,
            render=render if idempotency_key is not None else None,
        )

    return await svc.issue(
        a.category,
        channel=channel_for(p),
        kiosk=a.kiosk,
        priority=a.priority,
        priority_reason=a.priority_reason,
        idempotency_key=idempotency_key,
        render=render if idempotency_key is not None else None,
    )


def issued_view(svc: HallService, out: IssueOutcome) -> dict[str, Any]:
    return ticket_view(
        out.ticket, waiting_ahead=out.waiting_ahead, estimated_wait_s=svc.estimated_wait_s(out.ticket), qr=out.qr
    )


@command("ticket.issue", IssueArgs, ("kiosk", "guide", "window"))
async def _issue(ctx: HallContext, a: IssueArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": issued_view(svc, await issue_ticket(svc, a, p))}


def _window_ticket_command(name: str, action: Callable[[HallService, int], Awaitable[Any]]) -> None:
    """Register a window action that answers with the ticket it touched."""

    async def handler(ctx: HallContext, a: WindowArgs, p: Principal) -> dict[str, Any]:
        return {"ticket": _ticket(ctx.service, await action(ctx.service, a.window))}

    command(name, WindowArgs, ("window",), window_scoped=True)(handler)


_window_ticket_command("window.call_next", HallService.call_next)
_window_ticket_command("window.recall", HallService.recall)
_window_ticket_command("window.start", HallService.start_service)
_window_ticket_command("window.finish", HallService.finish)
_window_ticket_command("window.no_show", HallService.no_show)


@command("window.call", CallArgs, ("window",), window_scoped=True)
async def _call(ctx: HallContext, a: CallArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": _ticket(svc, await svc.call(a.window, a.number))}


@command("window.transfer", TransferArgs, ("window",), window_scoped=True)
async def _transfer(ctx: HallContext, a: TransferArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": _ticket(svc, await svc.transfer(a.window, a.to_category, a.to_window))}


@command("window.pause", WindowArgs, ("window",), window_scoped=True)
async def _pause(ctx: HallContext, a: WindowArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    await svc.pause(a.window, True)
    return {"window": svc.window_state(a.window).to_dict()}


@command("window.resume", WindowArgs, ("window",), window_scoped=True)
async def _resume(ctx: HallContext, a: WindowArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    await svc.pause(a.window, False)
    return {"window": svc.window_state(a.window).to_dict()}


@command("window.sign_in", SignInArgs, ("window",), window_scoped=True)
async def _sign_in(ctx: HallContext, a: SignInArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    await svc.sign_in(a.window, a.staff)
    return {"window": svc.window_state(a.window).to_dict()}


@command("window.sign_out", WindowArgs, ("window",), window_scoped=True)
async def _sign_out(ctx: HallContext, a: WindowArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    await svc.sign_in(a.window, None)
    return {"window": svc.window_state(a.window).to_dict()}


@command("window.evaluate", EvaluateArgs, ("window",), window_scoped=True)
async def _evaluate(ctx: HallContext, a: EvaluateArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    e = await svc.evaluate(a.window, a.level, "pad_screen", ticket_id=a.ticket_id, reasons=a.reasons)
    return {
        "evaluation": {
            "ticket_id": e.ticket_id,
            "level": e.level,
            "window": e.window,
            "staff": e.staff,
            "at": e.at.isoformat(),
        }
    }


@command("display.show", DisplayArgs, ("admin",))
async def _display(ctx: HallContext, a: DisplayArgs, p: Principal) -> dict[str, Any]:
    svc = ctx.service
    from hallctl.events import DisplayText

    svc.bus.publish(DisplayText(at=svc.clock(), display=a.display, text=a.text, seconds=a.seconds))
    return {"display": a.display, "text": a.text}


@command("climate.set", ClimateArgs, ("hvac",))
async def _climate(ctx: HallContext, a: ClimateArgs, p: Principal) -> dict[str, Any]:
    state = ctx.climate.set(a.zone, a.mode, a.target)
    return {"climate": state.to_dict()}
