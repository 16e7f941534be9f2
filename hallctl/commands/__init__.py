"""Commands, registered once and served on every transport (Moonraker's habit).

Each action is declared once with :func:`command`: its name, its argument model
(pydantic, unknown fields refused), who may run it (roles, window scoping), its
handler, its HTTP route (method, path, success status) and its MQTT topic under
``<root>/cmd/``. The HTTP routes (``hallctl.http.api``) and the MQTT command topics
(``hallctl.mqtt.commands``) are generated from this table, and both call
:func:`dispatch`, so validation, permissions and error codes are the same on both.

Parameters in the path or topic (``{window}``) arrive as strings, are merged into
the arguments (a body may not name them too) and are validated by the same model:
path/topic fields are lax (``"3"`` is window 3), every number or boolean a body
carries is strict (``{"target": "25"}`` is refused, as the zigbee path refuses a
string temperature; ``tests/mqtt/test_mqtt_strict.py`` checks every command).

Personal data is a property of the transport: a command lists the result fields
that carry it (``personal``) with the function that masks them, and a transport
that may not carry personal data (MQTT) always gets the masked form, whoever asked.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from hallctl.auth import Principal
from hallctl.commands.ratelimit import RateLimiter
from hallctl.context import HallContext
from hallctl.errors import Conflict, Forbidden, HallctlError, Refused
from hallctl.privacy import mask_id, mask_name
from hallctl.service import HallService, IssueOutcome
from hallctl.views import holder_view, ticket_view


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


# An evaluation's reasons: a few short tags from the pad page ("等候时间长"), never free text of any length.
Reason = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Reasons = Annotated[tuple[Reason, ...], Field(max_length=8)]


class IssueArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    priority: Literal["green", "normal"] | None = None
    priority_reason: Literal["elderly", "disabled", "pregnant", "serviceman", "other"] | None = None
    offer: str | None = Field(default=None, max_length=64)
    kiosk: str | None = Field(default=None, max_length=32)


class WindowArgs(Args):
    window: int = Field(ge=1, le=9999)  # always a path/topic parameter (a string there): lax


class CallArgs(WindowArgs):
    number: str = Field(min_length=2, max_length=32)
    # Call a ticket of another window's categories or transfers: admin only, logged with who.
    override: bool = Field(default=False, strict=True)


class TransferArgs(WindowArgs):
    to_category: str | None = Field(default=None, min_length=1, max_length=3)
    to_window: int | None = Field(default=None, ge=1, le=9999, strict=True)


class SignInArgs(WindowArgs):
    staff: str = Field(min_length=1, max_length=32)


class EvaluateArgs(WindowArgs):
    level: int = Field(ge=1, le=5, strict=True)
    ticket_id: str | None = Field(default=None, max_length=64)
    reasons: Reasons = ()


class TicketArgs(Args):
    ticket_id: str = Field(min_length=1, max_length=64)


class ReprintArgs(TicketArgs):
    kiosk: str | None = Field(default=None, max_length=32)


class TicketEvaluateArgs(TicketArgs):
    level: int = Field(ge=1, le=5, strict=True)
    reasons: Reasons = ()


class QrArgs(Args):
    code: str = Field(min_length=1, max_length=256)


class BookArgs(Args):
    category: str = Field(min_length=1, max_length=3)
    slot_start: datetime
    slot_end: datetime
    code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,16}$")


class AppointmentArgs(Args):
    code: str = Field(min_length=1, max_length=64)


class CheckInArgs(AppointmentArgs):
    kiosk: str | None = Field(default=None, max_length=32)


class DisplayArgs(Args):
    display: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=64)
    seconds: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False, strict=True)


class ClimateArgs(Args):
    zone: str = Field(min_length=1, max_length=32)
    mode: Literal["auto", "off", "cool", "heat", "dry", "fan_only"] | None = None
    target: float | None = Field(default=None, ge=-50, le=100, allow_inf_nan=False, strict=True)


@dataclasses.dataclass(frozen=True)
class Transport:
    """How a command reached us. ``personal_data``: may this transport carry full names and ID numbers?"""

    name: str
    personal_data: bool


# HTTP answers one authenticated caller over the hall's LAN; what it may see is the principal's business.
HTTP = Transport("http", personal_data=True)
# MQTT replies travel through a broker that other clients read (``hallctl/#`` readers): never personal data.
MQTT = Transport("mqtt", personal_data=False)
# Anything else (scripts, tests calling dispatch directly) gets the masked form too, unless it says otherwise.
INTERNAL = Transport("internal", personal_data=False)


@dataclasses.dataclass
class Call:
    """One invocation: who asked, over which transport, and transport extras (the HTTP idempotency key)."""

    principal: Principal
    transport: Transport = INTERNAL
    idempotency_key: str | None = None
    replayed: bool = False  # set by a handler that answered from an earlier identical request


Handler = Callable[[HallContext, Any, Call], Awaitable[dict[str, Any]]]
Mask = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class HttpRoute:
    """Where a command is served over HTTP (path below ``/api/v1``)."""

    method: str
    path: str
    status: int = 200
    # The answer is ``result[body]`` rather than the whole result (routes older than the table answer so).
    body: str | None = None
    # Reads the ``Idempotency-Key`` header (scoped to the token) and answers ``Idempotent-Replayed: true``.
    idempotency: bool = False
    # The command's own error codes by HTTP status, for the OpenAPI document (``x-codes``); the codes
    # every command can answer (auth, validation, rate limit, store) are added by ``hallctl.http.api``.
    errors: Mapping[int, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    args: type[Args]
    roles: tuple[str, ...]
    handler: Handler
    window_scoped: bool
    http: HttpRoute
    mqtt: str  # topic below ``<root>/cmd/``, with ``{param}`` segments
    personal: tuple[tuple[str, Mask], ...] = ()
    refusal: tuple[str, str] | None = None  # (code, message) of the 403 for a role not in ``roles``

    @property
    def topic_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.mqtt))


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    args: type[Args],
    roles: tuple[str, ...],
    *,
    http: HttpRoute,
    mqtt: str,
    window_scoped: bool = False,
    personal: dict[str, Mask] | None = None,
    refusal: tuple[str, str] | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a command once; both transports are generated from it."""
    cmd_params = (*re.findall(r"{(\w+)}", http.path), *re.findall(r"{(\w+)}", mqtt))
    unknown = [p for p in cmd_params if p not in args.model_fields]
    if unknown:
        raise ValueError(f"command {name}: path/topic parameters {unknown} are not fields of {args.__name__}")
    if window_scoped and "window" not in args.model_fields:
        raise ValueError(f"command {name}: window_scoped needs a window argument")

    def wrap(fn: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"command {name} registered twice")
        COMMANDS[name] = Command(
            name, args, roles, fn, window_scoped, http, mqtt, tuple((personal or {}).items()), refusal
        )
        return fn

    return wrap


class CommandError(HallctlError):
    http_status = 422
    title = "Invalid command"

    def __init__(
        self, code: str, message: str, message_en: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, message_en)
        self.errors = errors or []  # pydantic's list (loc, msg, type) for invalid_arguments


def parse_args(cmd: Command, raw: dict[str, Any]) -> Args:
    try:
        return cmd.args.model_validate(raw)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors)
        raise CommandError("invalid_arguments", details, errors=errors) from exc


def merge_args(body: dict[str, Any], from_path: dict[str, str]) -> dict[str, Any]:
    """The body's arguments plus the path's (or topic's); a body may not name a path parameter."""
    twice = sorted(set(body) & set(from_path))
    if twice:
        raise CommandError("invalid_arguments", f"{', '.join(twice)}: given by the path; leave it out of the body")
    return {**body, **from_path}


_limiters: dict[int, RateLimiter] = {}


def rate_limiter(ctx: HallContext) -> RateLimiter:
    """The hall's per-token rate limiter (one per context, forgotten with it)."""
    limiter = _limiters.get(id(ctx))
    if limiter is None:
        limiter = _limiters[id(ctx)] = RateLimiter(ctx.cfg.api.rate_limit)
        weakref.finalize(ctx, _limiters.pop, id(ctx), None)
    return limiter


async def dispatch(
    ctx: HallContext,
    name: str,
    raw: dict[str, Any],
    principal: Principal | Call,
) -> dict[str, Any]:
    """Validate, authorize, run; mask personal fields unless the transport and the principal may have them."""
    call = principal if isinstance(principal, Call) else Call(principal)
    p = call.principal
    cmd = COMMANDS.get(name)
    if cmd is None:
        raise CommandError("unknown_command", f"unknown command {name!r}")
    # Before any work: a token that sends too fast gets 429 rate_limited (HTTP; MQTT has no token).
    rate_limiter(ctx).check(p.token_id, p.role, cmd.name)
    args = parse_args(cmd, raw)
    if cmd.refusal is not None and p.role != "admin" and p.role not in cmd.roles:
        raise Forbidden(*cmd.refusal)
    p.require(*cmd.roles)
    if cmd.window_scoped:
        assert isinstance(args, WindowArgs)
        p.require_window(args.window)
    result = await cmd.handler(ctx, args, call)
    if cmd.personal and not (call.transport.personal_data and p.sees_personal_data):
        for key, mask in cmd.personal:
            if key in result:
                result[key] = mask(result[key])
    return result


def channel_for(p: Principal, transport: Transport = INTERNAL) -> str:
    """How a ticket came to be, for statistics: the kiosk screen, a guide (导办), MQTT, or other software."""
    if transport == MQTT:
        return "mqtt"
    return {"kiosk": "kiosk", "guide": "guide"}.get(p.role, "api")


def _ticket(svc: HallService, t: Any) -> dict[str, Any] | None:
    return ticket_view(t) if t is not None else None


async def issue_ticket(
    svc: HallService,
    a: IssueArgs,
    p: Principal,
    idempotency_key: str | None = None,
    transport: Transport = INTERNAL,
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
        # Only the token of the kiosk where the card was swiped (or admin) may redeem its offer.
        return await svc.issue_from_offer(
            a.offer,
            a.category,
            may_redeem=p.acts_for_kiosk,
            idempotency_key=idempotency_key,
            render=render if idempotency_key is not None else None,
        )

    return await svc.issue(
        a.category,
        channel=channel_for(p, transport),
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


def appointment_view(a: Any) -> dict[str, Any]:
    return {
        "code": a.code,
        "category": a.category,
        "slot_start": a.slot_start.isoformat(),
        "slot_end": a.slot_end.isoformat(),
        "state": a.state,
    }


def masked_holder(view: dict[str, Any] | None) -> dict[str, Any] | None:
    """The holder as a transport without personal data carries it: masked name and ID number, nothing else."""
    if view is None:
        return None
    return {
        "name": mask_name(view["name"]) if view.get("name") else None,
        "id_number": mask_id(view["id_number"]) if view.get("id_number") else None,
    }


# ---- tickets ----------------------------------------------------------------------------------


@command(
    "ticket.issue",
    IssueArgs,
    ("kiosk", "guide", "window"),
    http=HttpRoute(
        "POST",
        "/tickets",
        201,
        body="ticket",
        idempotency=True,
        errors={
            403: ("wrong_kiosk",),
            404: ("unknown_category", "unknown_kiosk", "unknown_ticket"),
            422: (
                "id_limit_reached",
                "priority_not_allowed",
                "bad_idempotency_key",
                "category_closed",
                "category_not_offered",
                "offer_expired",
            ),
        },
    ),
    mqtt="ticket/issue",
)
async def _issue(ctx: HallContext, a: IssueArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    p = c.principal
    key = c.idempotency_key
    if key is not None and not (1 <= len(key) <= 128):
        raise Refused("bad_idempotency_key", "Idempotency-Key must be 1..128 characters")
    # The key is scoped to the token that sent it; it covers swipe (offer) issues too, so a kiosk
    # that retries after a lost answer gets its ticket back instead of offer_expired.
    scoped = f"{p.token_id}:{key}" if key is not None else None
    out = await issue_ticket(svc, a, p, idempotency_key=scoped, transport=c.transport)
    c.replayed = out.replayed
    return {"ticket": issued_view(svc, out)}


@command(
    "ticket.cancel",
    TicketArgs,
    ("guide", "kiosk"),
    http=HttpRoute(
        "POST",
        "/tickets/{ticket_id}/cancel",
        body="ticket",
        errors={404: ("unknown_ticket",), 409: ("ticket_not_waiting",)},
    ),
    mqtt="ticket/{ticket_id}/cancel",
)
async def _cancel(ctx: HallContext, a: TicketArgs, c: Call) -> dict[str, Any]:
    return {"ticket": ticket_view(await ctx.service.cancel(a.ticket_id))}


@command(
    "ticket.reprint",
    ReprintArgs,
    ("guide", "kiosk", "window"),  # window: the terminal shows print_failed tickets with a reprint button
    http=HttpRoute(
        "POST", "/tickets/{ticket_id}/reprint", 202, errors={404: ("unknown_ticket",), 422: ("no_printer",)}
    ),
    mqtt="ticket/{ticket_id}/reprint",
)
async def _reprint(ctx: HallContext, a: ReprintArgs, c: Call) -> dict[str, Any]:
    t = await ctx.service.reprint(a.ticket_id, a.kiosk)
    return {"ticket": ticket_view(t), "queued": True}


# Ratings come only from the visitor's side (the pad device, the pad page with a pad token).
VISITOR_ONLY = ("rating_from_visitor_only", "评价只能由办事群众在评价器上作出")


@command(
    "ticket.evaluate",
    TicketEvaluateArgs,
    ("pad",),
    http=HttpRoute(
        "POST",
        "/tickets/{ticket_id}/evaluation",
        201,
        errors={
            403: ("rating_from_visitor_only", "wrong_window"),
            404: ("unknown_ticket", "unknown_window"),
            409: ("ticket_not_served", "already_evaluated", "no_ticket_to_evaluate"),
            422: ("bad_level", "ticket_not_at_window"),
        },
    ),
    mqtt="ticket/{ticket_id}/evaluate",
    refusal=VISITOR_ONLY,
)
async def _evaluate_ticket(ctx: HallContext, a: TicketEvaluateArgs, c: Call) -> dict[str, Any]:
    t = await ctx.service.ticket(a.ticket_id)
    if t.window is None:
        raise Conflict("ticket_not_served", f"ticket {t.number} has not been served")
    c.principal.require_window(t.window)  # the pad of the window that served it
    return await _evaluation(ctx, t.window, a.level, t.id, a.reasons)


@command(
    "ticket.by_qr",
    QrArgs,
    ("window",),
    http=HttpRoute(
        "GET",
        "/tickets/by-qr/{code}",
        errors={403: ("wrong_window",), 404: ("unknown_ticket",), 422: ("bad_qr_token", "expired_qr_token")},
    ),
    mqtt="ticket/by_qr",
    personal={"holder": masked_holder},
)
async def _by_qr(ctx: HallContext, a: QrArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    p = c.principal
    t, holder = await svc.ticket_by_qr(a.code)
    if p.role != "admin":
        # Least privilege: a clerk sees the visitors of their own windows' queues, not the whole hall's.
        mine = {cat for n in p.windows if (w := svc.cfg.window_by_number(n)) for cat in w.categories}
        if not (t.window in p.windows or t.target_window in p.windows or t.category in mine):
            raise Forbidden("wrong_window", f"ticket {t.number} is not for this token's windows")
    return {"ticket": ticket_view(t), "holder": holder_view(holder) if holder else None}


# ---- windows ----------------------------------------------------------------------------------


def _window_ticket_command(
    name: str,
    http: str,
    action: Callable[[HallService, int], Awaitable[Any]],
    errors: Mapping[int, tuple[str, ...]],
) -> None:
    """Register a window action that answers with the ticket it touched."""

    async def handler(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
        return {"ticket": _ticket(ctx.service, await action(ctx.service, a.window))}

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
_window_ticket_command("window.call_next", "call-next", HallService.call_next, {409: ("window_busy", "window_paused")})
_window_ticket_command("window.recall", "recall", HallService.recall, _CURRENT)
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
        e409=("window_busy", "ticket_not_waiting", "not_for_this_window"),
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
    return {"ticket": _ticket(svc, await svc.call(a.window, a.number, override_by=override_by))}


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
    return {"ticket": _ticket(svc, await svc.transfer(a.window, a.to_category, a.to_window))}


@command(
    "window.pause",
    WindowArgs,
    ("window",),
    window_scoped=True,
    http=_window_http("pause"),
    mqtt="window/{window}/pause",
)
async def _pause(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    await svc.pause(a.window, True)
    return {"window": svc.window_state(a.window).to_dict()}


@command(
    "window.resume",
    WindowArgs,
    ("window",),
    window_scoped=True,
    http=_window_http("resume"),
    mqtt="window/{window}/resume",
)
async def _resume(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    await svc.pause(a.window, False)
    return {"window": svc.window_state(a.window).to_dict()}


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
    "window.sign_out",
    WindowArgs,
    ("window",),
    window_scoped=True,
    http=_window_http("sign-out"),
    mqtt="window/{window}/sign_out",
)
async def _sign_out(ctx: HallContext, a: WindowArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    await svc.sign_in(a.window, None)
    return {"window": svc.window_state(a.window).to_dict()}


async def _evaluation(
    ctx: HallContext, window: int, level: int, ticket_id: str | None, reasons: tuple[str, ...]
) -> dict[str, Any]:
    e = await ctx.service.evaluate(window, level, "pad_screen", ticket_id=ticket_id, reasons=reasons)
    return {
        "evaluation": {
            "ticket_id": e.ticket_id,
            "level": e.level,
            "window": e.window,
            "staff": e.staff,
            "at": e.at.isoformat(),
        }
    }


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
    return await _evaluation(ctx, a.window, a.level, a.ticket_id, a.reasons)


# ---- appointments -----------------------------------------------------------------------------


@command(
    "appointment.book",
    BookArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments",
        201,
        body="appointment",
        errors={404: ("unknown_category",), 409: ("appointment_exists",), 422: ("bad_slot",)},
    ),
    mqtt="appointment/book",
)
async def _book(ctx: HallContext, a: BookArgs, c: Call) -> dict[str, Any]:
    appt = await ctx.service.book(a.category, a.slot_start, a.slot_end, code=a.code)
    return {"appointment": appointment_view(appt)}


@command(
    "appointment.cancel",
    AppointmentArgs,
    ("guide",),
    http=HttpRoute(
        "POST",
        "/appointments/{code}/cancel",
        body="appointment",
        errors={404: ("unknown_appointment",), 409: ("appointment_used",)},
    ),
    mqtt="appointment/{code}/cancel",
)
async def _cancel_appointment(ctx: HallContext, a: AppointmentArgs, c: Call) -> dict[str, Any]:
    return {"appointment": appointment_view(await ctx.service.cancel_appointment(a.code))}


@command(
    "appointment.check_in",
    CheckInArgs,
    ("kiosk", "guide"),
    http=HttpRoute(
        "POST",
        "/appointments/{code}/check-in",
        201,
        body="ticket",
        errors={
            404: ("unknown_appointment", "unknown_category", "unknown_kiosk"),
            409: ("appointment_used",),
            422: ("appointment_too_early", "category_closed"),
        },
    ),
    mqtt="appointment/{code}/check_in",
)
async def _check_in(ctx: HallContext, a: CheckInArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    return {"ticket": issued_view(svc, await svc.check_in(a.code, a.kiosk))}


# ---- screens and climate ----------------------------------------------------------------------


@command(
    "display.show",
    DisplayArgs,
    ("admin",),
    http=HttpRoute("POST", "/displays/{display}/show"),
    mqtt="display/{display}/show",
)
async def _display(ctx: HallContext, a: DisplayArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    from hallctl.events import DisplayText

    svc.bus.publish(DisplayText(at=svc.clock(), display=a.display, text=a.text, seconds=a.seconds))
    return {"display": a.display, "text": a.text}


@command(
    "climate.set",
    ClimateArgs,
    ("hvac",),
    http=HttpRoute("POST", "/climate/{zone}", errors={404: ("unknown_zone",), 422: ("bad_mode", "bad_target")}),
    mqtt="climate/{zone}/set",
)
async def _climate(ctx: HallContext, a: ClimateArgs, c: Call) -> dict[str, Any]:
    state = await ctx.climate.set(a.zone, a.mode, a.target)
    return {"climate": state.to_dict()}
