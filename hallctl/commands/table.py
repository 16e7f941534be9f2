"""The command table itself: declaring a command, its transports, and dispatching a call."""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError

from hallctl.auth import Principal
from hallctl.commands.args import Args, WindowArgs
from hallctl.commands.ratelimit import RateLimiter
from hallctl.context import HallContext
from hallctl.errors import Forbidden, HallctlError


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
    refusal: tuple[str, str, str] | None = None  # (code, zh, en) of the 403 for a role not in ``roles``

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
    refusal: tuple[str, str, str] | None = None,
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
        # What ``model_validate`` runs, without its wrapper (half of the call's time for a kiosk's body).
        return cmd.args.__pydantic_validator__.validate_python(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors)
        raise CommandError("invalid_arguments", f"参数无效：{details}", details, errors=errors) from exc


def merge_args(body: dict[str, Any], from_path: dict[str, str]) -> dict[str, Any]:
    """The body's arguments plus the path's (or topic's); a body may not name a path parameter."""
    if not from_path:
        return body
    twice = sorted(set(body) & set(from_path))
    if twice:
        raise CommandError(
            "invalid_arguments",
            f"{', '.join(twice)}：已由路径给出，请求体中不要再写",
            f"{', '.join(twice)}: given by the path; leave it out of the body",
        )
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
        raise CommandError("unknown_command", f"没有命令{name!r}", f"unknown command {name!r}")
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
