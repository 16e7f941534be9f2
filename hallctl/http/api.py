"""The local HTTP API (FastAPI, ``/api/v1``) for kiosks, screens, windows and hall software.

Routes are thin. Every command route is generated from the command table
(:mod:`hallctl.commands`, the table the MQTT ``cmd/...`` topics come from too):
it authenticates, merges the path parameters into the JSON body and calls
:func:`hallctl.commands.dispatch`. The other routes read from the service. Every error leaves
as ``application/problem+json`` (RFC 9457) with a stable ``code``; messages
never contain personal data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.types import DecoratedCallable
from fastapi.utils import generate_unique_id
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException

from hallctl import __version__, commands, jsontext
from hallctl.auth import Principal, bearer_token
from hallctl.commands.ratelimit import RateLimited
from hallctl.context import HallContext, LazyRoutes
from hallctl.errors import HallctlError, NotFound
from hallctl.http.lazy import LazyRouters, RouterSlot, fill_slot
from hallctl.http.limits import BodyLimit, CatchAll, send_problem
from hallctl.http.streams import StreamHub, StreamResponse, snapshot_frames, sse_stream
from hallctl.http.voice import VoiceCache
from hallctl.views import ticket_view, window_ticket_view

if TYPE_CHECKING:
    from hallctl.engine import Ticket

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# Routes whose bodies may be larger than ``[api] max_body_bytes``: (method, path regex, bytes). None today.
BODY_ALLOWANCES: tuple[tuple[str, str, int], ...] = ()


@dataclasses.dataclass
class ApiDeps:
    ctx: HallContext
    voice_dir: Path | None = None
    pages: Callable[[FastAPI], None] | None = None


def problem(
    status: int, code: str, title: str, detail: str, detail_en: str | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail, "code": code}
    if detail_en and detail_en != detail:
        body["detail_en"] = detail_en
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def error_response(method: str, path: str, exc: HallctlError) -> JSONResponse:
    """A :class:`HallctlError` as problem+json: the one rendering for FastAPI's handler and the command routes."""
    if exc.http_status >= 500:
        log.error("%s %s: %s", method, path, exc.code)
    extra = dict(exc.extra)
    if isinstance(exc, commands.CommandError) and exc.errors:
        extra["errors"] = exc.errors
    resp = problem(exc.http_status, exc.code, exc.title, exc.message, exc.message_en, **extra)
    if isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


async def principal(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Principal:
    """Bearer header, or ``?token=`` for EventSource, audio and page links that cannot set headers."""
    ctx: HallContext = request.app.state.ctx
    return await ctx.auth.authenticate(bearer_token(authorization) or token)


Auth = Annotated[Principal, Depends(principal)]


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD``: pydantic would also read ``0`` as 1970-01-01 (a Unix time)."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date is YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every body: json.loads(..., parse_constant=...) builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)
# What JSONDecoder.decode runs around its scanner, inlined (two Python frames per body fewer).
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # json.decoder.WHITESPACE


def _encoding(raw: bytes) -> str:
    """``json.detect_encoding``, answered at once for what every client sends: an object, no BOM."""
    if raw[:1] == b"{" and raw[1:2] != b"\x00":
        return "utf-8"
    return json.detect_encoding(raw)


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        # ValueError: a huge integer (over Python's digit limit), NaN/Infinity; RecursionError: deep nesting.
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32 by the first bytes).
        text = raw.decode(_encoding(raw), "surrogatepass")
        try:
            data, end = _SCAN(text, _JSON_SPACE.match(text).end())  # type: ignore[union-attr]
        except StopIteration as exc:
            raise ValueError("no JSON value") from exc
        if _JSON_SPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
            raise ValueError("data after the JSON value")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HallctlError("malformed_json", "请求体不是有效的JSON", "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise commands.CommandError("invalid_arguments", "请求体须为JSON对象", "body: must be a JSON object")
    return data


class ApiRoutes:
    """Routes added straight to the app under the API's prefix (``/api/v1``), each built once.

    ``app.include_router(APIRouter(prefix=...))`` builds every route a second time for the
    inclusion (FastAPI analyses each endpoint's parameters again: 45 routes, ≈0.04 s of the
    cold start, issue 12 goal 4). The routes, their order, names and operation ids are the
    same as the included router's were.
    """

    def __init__(self, app: FastAPI, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kw: Any) -> None:
        self.app.add_api_route(self.prefix + path, endpoint, **kw)

    def get(self, path: str, **kw: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.app.get(self.prefix + path, **kw)


def add_command_route(api: ApiRoutes, ctx: HallContext, cmd: commands.Command) -> None:
    """Serve one command of the table at its HTTP route."""
    route = cmd.http
    has_body = route.method != "GET"

    async def endpoint(**kw: Any) -> JSONResponse:
        request: Request = kw["request"]
        p: Principal = kw["p"]
        body = _json_body(await request.body()) if has_body else {}
        args = commands.merge_args(body, {n: kw[n] for n in route.params})
        call = commands.Call(p, commands.HTTP, idempotency_key=kw.get("idempotency_key"))
        result = await commands.dispatch(ctx, cmd.name, args, call)
        headers = {"Idempotent-Replayed": "true"} if call.replayed else {}
        return JSONResponse(result[route.body] if route.body else result, status_code=route.status, headers=headers)

    kw_only = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("request", kw_only, annotation=Request),
        inspect.Parameter("p", kw_only, annotation=Auth),
        # Strings here: the command's model converts and validates them (invalid_arguments on both transports).
        *(inspect.Parameter(n, kw_only, annotation=Annotated[str, PathParam()]) for n in route.params),
    ]
    if route.idempotency:
        params.append(
            inspect.Parameter("idempotency_key", kw_only, annotation=Annotated[str | None, Header()], default=None)
        )
    endpoint.__signature__ = inspect.Signature(params, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    # The request body's schema is added when the document is asked for (openapi.openapi_document),
    # not here: generating the JSON schemas of every command at start cost ~0.1 s of CPU.
    extra: dict[str, Any] = {"x-command": cmd.name, "x-mqtt-topic": f"cmd/{cmd.mqtt}"}
    roles = ", ".join(cmd.roles) + (" (scoped to the token's windows)" if cmd.window_scoped else "")
    api.add_api_route(
        route.path,
        endpoint,
        methods=[route.method],
        status_code=route.status,
        name=cmd.name,
        summary=cmd.name,
        description=f"Command `{cmd.name}` (MQTT `cmd/{cmd.mqtt}`). Roles: {roles}; admin may always.",
        response_model=None,
        openapi_extra=extra,
    )


class CommandRouteDocs:
    """FastAPI's copies of the command routes, made at their first use instead of at start.

    :class:`CommandRoutes` serves the command routes in front of FastAPI; FastAPI needs its own
    routes for them only for the OpenAPI document and for a request the front leaves to it that
    they match by path (another method: 405 with ``Allow``; a trailing slash: 307). Making them
    analyses every endpoint's parameters (35 routes, 191 pydantic adapters: ≈0.06 s of the cold
    start's CPU, issue 12 goal 4), so :meth:`ensure` makes them when the document is asked for
    or such a request arrives. They are put where ``create_app`` used to add them, with the
    operation ids kept for them (:func:`operation_ids`), so the routes' order, every answer
    and the document are the same.
    """

    def __init__(self, api: ApiRoutes, ctx: HallContext) -> None:
        self.api = api
        self.ctx = ctx
        self.slot = RouterSlot("FastAPI's copies of the command routes")
        api.app.router.routes.append(self.slot)
        self.done = False

    def ensure(self) -> None:
        if self.done:
            return
        self.done = True  # once: a route is never added twice
        fill_slot(self.api.app, self.slot, self._add)

    def _add(self) -> None:
        for cmd in commands.COMMANDS.values():
            add_command_route(self.api, self.ctx, cmd)


class CommandRoutes:
    """Serve the command table's HTTP routes straight from ASGI, in front of FastAPI; the rest goes on to it.

    A command route needs little: the bearer token (or ``?token=``), the path parameters as
    strings, the ``Idempotency-Key`` header, the JSON body; the command's own model validates
    the arguments (:func:`hallctl.commands.dispatch`, the same for MQTT). FastAPI's routing,
    dependency solving and middleware stack cost several times what the command itself
    costs per request (issue 12's profile), and every frame between the server and the
    command is passed again each time a request's task resumes, so these routes are matched
    first, outside the FastAPI app (:class:`hallctl.http.server.ApiServer` serves this
    object). They keep what the app's middlewares give the other routes: the body limit
    (:meth:`BodyLimit.body`, before the token is checked) and problem+json 500 for an
    unexpected exception. The routes stay registered with FastAPI for the OpenAPI document,
    and a request this layer does not match exactly (another method, a trailing slash)
    reaches FastAPI as before.
    """

    def __init__(self, app: Any, ctx: HallContext, limits: BodyLimit) -> None:
        self.app = app
        self.ctx = ctx
        self.limits = limits
        self.docs: CommandRouteDocs | None = getattr(app.state, "command_docs", None)
        self.lazy: LazyRouters | None = getattr(app.state, "lazy_routers", None)
        self.routes: dict[str, list[tuple[re.Pattern[str], commands.Command]]] = {}
        for cmd in commands.COMMANDS.values():
            route = cmd.http
            pattern = re.escape("/api/v1" + route.path)
            for name in route.params:
                pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
            self.routes.setdefault(route.method, []).append((re.compile(pattern), cmd))
        # Every command path in one pattern, whatever the method (see _commands_path).
        unnamed = [re.sub(r"\(\?P<\w+>", "(?:", p.pattern) for r in self.routes.values() for p, _ in r]
        self.any_path = re.compile("|".join(unnamed))

    def __call__(self, scope: Any, receive: Any, send: Any) -> Awaitable[None]:
        """The coroutine that answers, returned rather than awaited: one frame fewer at every resume."""
        if scope["type"] == "http":
            path = scope["path"]
            for pattern, cmd in self.routes.get(scope["method"], ()):
                m = pattern.fullmatch(path)
                if m is not None:
                    return self._guarded(scope, receive, send, cmd, m.groupdict())
            if self.docs is not None and not self.docs.done and self._commands_path(path):
                self.docs.ensure()  # FastAPI answers it as it would with the routes made at start
        if self.lazy is not None and self.lazy.pending and scope["type"] in ("http", "websocket"):
            self.lazy.ensure(scope["path"])  # the routers under its path, made now (hallctl/http/lazy.py)
        awaitable: Awaitable[None] = self.app(scope, receive, send)
        return awaitable

    def _commands_path(self, path: str) -> bool:
        """Whether a command route matches ``path`` by path alone (or without its trailing slashes, as
        Starlette's redirect tries it): the requests FastAPI answers differently without them."""
        if self.any_path.fullmatch(path) is not None:
            return True
        return path.endswith("/") and self.any_path.fullmatch(path.rstrip("/")) is not None

    async def _guarded(
        self, scope: Any, receive: Any, send: Any, cmd: commands.Command, params: dict[str, str]
    ) -> None:
        raw = await self.limits.body(scope, receive, send)
        if raw is None:
            return  # refused by the body limit (413, 400), answered
        # One coroutine from here to the command's (each layer is passed again at every resume).
        try:
            route = cmd.http
            authorization = idempotency_key = None
            for name, value in scope["headers"]:
                if name == b"authorization" and authorization is None:
                    authorization = value.decode("latin-1")
                elif name == b"idempotency-key" and idempotency_key is None:
                    idempotency_key = value.decode("latin-1")
            token = bearer_token(authorization) or _query_token(scope.get("query_string", b""))
            auth = self.ctx.auth
            p = auth.cached(token) or await auth.authenticate(token)
            body = _json_body(raw) if route.method != "GET" else {}
            args = commands.merge_args(body, params)
            call = commands.Call(p, commands.HTTP, idempotency_key=idempotency_key if route.idempotency else None)
            result = await commands.dispatch(self.ctx, cmd.name, args, call)
            # As Starlette's JSONResponse renders it, byte for byte.
            content = jsontext.dumps_strict(result[route.body] if route.body else result).encode()
        except HallctlError as exc:
            await error_response(scope["method"], scope["path"], exc)(scope, receive, send)
            return
        except Exception:
            log.exception("%s %s: unexpected error", scope.get("method"), scope.get("path"))
            await send_problem(send, 500, "internal_error", "Internal error", "内部错误", "internal error")
            return
        headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
        if call.replayed:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": route.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _query_token(query: bytes) -> str | None:
    """``?token=`` (the last one, as FastAPI reads a query parameter), for clients that cannot set headers."""
    if b"token=" not in query:
        return None
    values = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == "token"]
    return values[-1] if values else None


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    # Imported at the first request for the document: its response models (hallctl.schemas)
    # are idle memory and start-up time a hall that never asks for it does not pay (issue 12).
    from hallctl.http.openapi import openapi_document

    app.state.command_docs.ensure()
    app.state.lazy_routers.ensure()
    return openapi_document(app)


def _report_router(ctx: HallContext) -> Any:
    from hallctl.http.reports import report_router  # with the reports' replay code: at the first report

    return report_router(ctx, principal)


def operation_ids(commands_first: Iterable[str] = ()) -> Callable[[APIRoute], str]:
    """Operation ids from the route names (``window_call_next``, ``get_ticket``): readable client
    methods. A name taken already (two routers' functions with the same name) keeps FastAPI's id.

    The command routes (``commands_first``, by command name) are made at their first use
    (:class:`CommandRouteDocs`) but keep their names as if made first, as they were.
    """
    taken: dict[str, APIRoute | str] = {n.replace(".", "_"): n for n in commands_first}

    def op_id(route: APIRoute) -> str:
        name = route.name.replace(".", "_")
        owner = taken.setdefault(name, route)
        if owner is route or (isinstance(owner, str) and (route.openapi_extra or {}).get("x-command") == owner):
            taken[name] = route
            return name
        return generate_unique_id(route)

    return op_id


def create_app(deps: ApiDeps) -> FastAPI:
    ctx = deps.ctx
    svc = ctx.service
    app = FastAPI(
        title="hallctl",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        description="Hall-control daemon API. Errors are application/problem+json.",
        generate_unique_id_function=operation_ids(commands.COMMANDS),
    )
    app.state.service = svc
    # The document as the server answers: models, problem+json errors with codes, security schemes.
    app.openapi = lambda: _openapi_document(app)  # type: ignore[method-assign]
    app.state.ctx = ctx
    # Set by the server's stop: open streams end so clients see the restart and reconnect.
    app.state.closing = asyncio.Event()

    @app.exception_handler(HallctlError)
    async def _hallctl_error(request: Request, exc: HallctlError) -> JSONResponse:
        return error_response(request.method, request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(
                400, "malformed_json", "Bad request", "请求体不是有效的JSON", "request body is not valid JSON"
            )
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return problem(422, "invalid_request", "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's own body parsing (models as bodies): deep nesting, huge integers, bad UTF-8.
            return problem(
                400, "malformed_json", "Bad request", "请求体不是有效的JSON", "request body is not valid JSON"
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), str(exc.detail))

    async def _is_admin(authorization: str | None, token: str | None) -> bool:
        bearer = bearer_token(authorization)
        if not (bearer or token):
            return False
        try:
            return (await ctx.auth.authenticate(bearer or token)).role == "admin"
        except HallctlError:
            return False

    # One bus subscriber for every SSE and WebSocket client (serialises each event once; caps; revocation).
    hub = StreamHub(ctx, app.state.closing, ctx.cfg.api.max_streams, ctx.cfg.api.max_streams_per_token)
    app.state.streams = hub
    ctx.report_health("streams", hub.stats)
    voices = VoiceCache.for_config(ctx.cfg, deps.voice_dir) if deps.voice_dir is not None else None
    if voices is not None:
        ctx.report_health("voice", voices.health)
    app.state.voices = voices
    api = ApiRoutes(app, "/api/v1")
    # Here in the routes' order, made at their first use (CommandRouteDocs; served by CommandRoutes).
    app.state.command_docs = CommandRouteDocs(api, ctx)

    @api.get("/health")
    async def health(
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        token: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> JSONResponse:
        """States for anyone (monitoring, load balancers); details (paths, errors, URLs, bus) for admin only."""
        devices = {
            k: {
                "kind": d.device_kind,
                "state": d.state,
                "detail": d.detail,
                "detail_zh": d.detail_zh,
                "since": d.since.isoformat(),
            }
            for k, d in svc.devices.items()
        }
        extra = ctx.health()
        store = svc.store_health()
        degraded = (
            not store.ok
            or any(d["state"] not in ("ok", "unknown") for d in devices.values())  # unknown: status = "none"
            or any(isinstance(v, dict) and v.get("ok") is False for v in extra.values())
        )
        if not await _is_admin(authorization, token):
            return JSONResponse(
                {
                    "status": "degraded" if degraded else "ok",
                    "hall": svc.cfg.hall.id,
                    "day": svc.day.isoformat(),
                    "store": {"ok": store.ok},
                    "devices": {k: {"state": d["state"]} for k, d in devices.items()},
                    **{k: _public_section(v) for k, v in extra.items()},
                }
            )
        body = {
            "status": "degraded" if degraded else "ok",
            "hall": svc.cfg.hall.id,
            "version": __version__,
            "uptime_s": round((svc.clock() - svc.started_at).total_seconds(), 1),
            "day": svc.day.isoformat(),
            "store": store.to_dict(),
            "devices": devices,
            "bus": svc.bus.stats(),
            **extra,
        }
        return JSONResponse(body)

    @api.get("/categories")
    async def categories(p: Auth) -> list[dict[str, Any]]:
        out = []
        for c in svc.cfg.category:
            qs = svc.queue_state(c.prefix)
            out.append(
                {
                    "prefix": c.prefix,
                    "name": c.name,
                    "name_en": c.name_en,
                    "hours": list(c.hours),
                    "open": qs.open,
                    "waiting": qs.waiting,
                    "avg_wait_s": qs.avg_wait_s,
                    "target_wait_minutes": c.target_wait_minutes,
                    "description": c.description,
                }
            )
        return out

    @api.get("/windows")
    async def windows(p: Auth) -> list[dict[str, Any]]:
        return [svc.window_state(w.number).to_dict() | {"floor": w.floor} for w in svc.cfg.window]

    @api.get("/kiosks/{kiosk_id}")
    async def kiosk(kiosk_id: Annotated[str, PathParam(max_length=32)], p: Auth) -> dict[str, Any]:
        k = svc.cfg.kiosk_by_id(kiosk_id)
        if k is None:
            raise NotFound("unknown_kiosk", f"没有取号机 {kiosk_id}", f"no kiosk {kiosk_id}")
        printer = svc.devices.get(k.printer) if k.printer else None
        reader = svc.devices.get(k.reader) if k.reader else None
        return {
            "id": k.id,
            "floor": k.floor,
            "categories": list(k.categories),
            "hall": svc.cfg.hall.name,
            "hall_en": svc.cfg.hall.name_en,
            "printer": printer.to_dict() if printer else None,
            "reader": reader.to_dict() if reader else None,
        }

    @api.get("/tickets")
    async def list_tickets(
        p: Auth,
        state: str | None = None,
        category: str | None = None,
        day: Annotated[IsoDate | None, Query(alias="date")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        rows = await svc.tickets(day=day, state=state, category=category, limit=limit)
        return [ticket_view(t) for t in rows]

    @api.get("/tickets/{ticket_id}")
    async def get_ticket(ticket_id: Annotated[str, PathParam(max_length=64)], p: Auth) -> dict[str, Any]:
        t = await svc.ticket(ticket_id)
        view = ticket_view(t, waiting_ahead=svc.waiting_ahead(t) if t.state == "waiting" else None)
        if p.role == "admin":
            view["events"] = [e.to_dict() for e in await svc.ticket_history(t.id)]
        return view

    @api.get("/windows/{window}/queue")
    async def window_queue(window: Annotated[int, PathParam(ge=1, le=9999)], p: Auth) -> dict[str, Any]:
        view = svc.window_queue(window)
        now = svc.clock()
        cat = svc.cfg.category_by_prefix

        def shown(t: Ticket) -> dict[str, Any]:
            return window_ticket_view(t, cat(t.category), now)

        return {
            "window": view.state.to_dict(),
            "current": shown(view.current) if view.current is not None else None,
            "waiting": [shown(t) for t in view.waiting],
            "served_today": view.served_today,
            "history": [ticket_view(t) for t in view.history],
        }

    @api.get("/stats")
    async def stats(p: Auth, day: Annotated[IsoDate | None, Query(alias="date")] = None) -> dict[str, Any]:
        from hallctl.reports.stats import service_day_stats  # the reports package: at the first figures asked for

        return await service_day_stats(svc, day)

    @api.get("/stats/live")
    async def stats_live(p: Auth) -> dict[str, Any]:
        from hallctl.reports.live import live_figures
        from hallctl.reports.stats import service_day_stats

        out = live_figures(svc)
        out["alerts"] = [a.to_dict() for a in ctx.supervision.recent(20)]
        out["sensors"] = [s.to_dict() for s in svc.sensors.values()]
        out["climate"] = [c.to_dict() for c in ctx.climate.snapshot()]
        out["stats"] = (await service_day_stats(svc))["total"]
        return out

    @api.get("/sensors/history")
    async def sensor_history(
        p: Auth, hours: Annotated[float, Query(gt=0, le=168)] = 6, sensor: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per sensor per minute (count, average, min/max/last), the minute in progress included."""
        from datetime import timedelta

        return [r.to_dict() for r in await svc.readings(svc.clock() - timedelta(hours=hours), sensor)]

    @api.get("/climate")
    async def climate(p: Auth) -> list[dict[str, Any]]:
        return [c.to_dict() for c in ctx.climate.snapshot()]

    @api.get("/climate/energy")
    async def climate_energy(p: Auth, day: Annotated[IsoDate | None, Query()] = None) -> list[dict[str, Any]]:
        """Each zone's energy and comfort of a business day (today when ``day`` is absent)."""
        return [zd.to_dict() for zd in await ctx.energy.totals(day or ctx.energy.today())]

    @api.get("/climate/energy.csv")
    async def climate_energy_csv(p: Auth, day: Annotated[IsoDate | None, Query()] = None) -> Response:
        """The same figures as CSV (one row per zone) for a spreadsheet."""
        rows = [zd.to_dict() for zd in await ctx.energy.totals(day or ctx.energy.today())]
        from hallctl.reports.energy import energy_csv  # the climate package: only for a hall that asks

        return Response(energy_csv(rows), media_type="text/csv; charset=utf-8")

    @api.get("/alerts")
    async def alerts(p: Auth) -> list[dict[str, Any]]:
        return [a.to_dict() for a in ctx.supervision.recent(100)]

    @api.get("/devices")
    async def devices(p: Auth) -> list[dict[str, Any]]:
        return [d.to_dict() for d in svc.devices.values()]

    @api.get("/events")
    async def sse(
        request: Request,
        p: Auth,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        token: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> StreamingResponse:
        client = hub.register(p, bearer_token(authorization) or token or "", "sse")  # 429/503 when full
        return StreamResponse(hub, client, sse_stream(ctx, hub, client, request))

    @api.get("/calls")
    async def calls(p: Auth, limit: Annotated[int, Query(ge=1, le=300)] = 9) -> list[dict[str, Any]]:
        """Recent calls (latest per ticket, newest first) with their announcements, as the events said them."""
        return [e.to_dict() for e in svc.recent_calls(limit)]

    @api.get("/voice/{ticket_id}.wav")
    async def voice(ticket_id: Annotated[str, PathParam(max_length=64)], p: Auth) -> FileResponse:
        """The announcement of this ticket's latest call; only calls that happened are rendered."""
        call = svc.last_call(ticket_id)
        if call is None:
            raise NotFound("not_called", "该号票还没有叫过号", f"ticket {ticket_id} has not been called")
        if voices is None:
            raise NotFound("voice_disabled", "未配置语音播报", "voice rendering is not configured")
        path = await voices.render_call(call)
        return FileResponse(path, media_type="audio/wav")

    # The reports and the components' rarely used routers are made at their first request (hallctl/http/lazy.py).
    lazy = app.state.lazy_routers = LazyRouters(app)
    lazy.add(LazyRoutes("/api/v1/reports", lambda: _report_router(ctx)))
    for router in ctx.routers:
        if isinstance(router, LazyRoutes):
            lazy.add(router)
        else:
            app.include_router(router)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, token: str | None = None) -> None:
        bearer = token or bearer_token(websocket.headers.get("authorization"))
        try:
            p = await ctx.auth.authenticate(bearer)
        except HallctlError:
            # Closing before accept() would refuse the handshake with a bare 403; accept first so the
            # screen sees 4401 ("unauthorized") and can tell a bad token from a network fault.
            await websocket.accept()
            await websocket.close(code=4401)
            return
        await websocket.accept()
        try:
            client = hub.register(p, bearer or "", "ws")
        except HallctlError as exc:
            await websocket.close(code=1013, reason=exc.code)  # try again later
            return
        try:
            for f in snapshot_frames(ctx, p):
                await websocket.send_text(f.ws)
            while True:
                nxt = await client.next(None)
                if nxt is None:
                    # restart: the client reconnects; too slow: 1013 (reconnect, get the present); revoked: 4401
                    code = {"closing": 1012, "revoked": 4401}.get(client.reason or "", 1013)
                    await websocket.close(code=code)
                    return
                await websocket.send_text(nxt.ws)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            hub.unregister(client)

    if deps.pages is not None:
        deps.pages(app)
    # Outermost last: the body limit runs before anything reads the body or checks the token.
    # The command routes are served in front of this app (front_door), with the same limit.
    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, default=ctx.cfg.api.max_body_bytes, allowances=BODY_ALLOWANCES)
    return app


def front_door(app: FastAPI, ctx: HallContext) -> CommandRoutes:
    """What the HTTP server serves: the command routes first, then the FastAPI app (same body limit for both)."""
    limits = BodyLimit(app, default=ctx.cfg.api.max_body_bytes, allowances=BODY_ALLOWANCES)
    return CommandRoutes(app, ctx, limits)


def _public_section(section: Any) -> Any:
    """A health section as anyone may see it: whether it is ok and connected, nothing else."""
    if not isinstance(section, dict):
        return None
    return {k: section[k] for k in ("ok", "connected") if k in section}
