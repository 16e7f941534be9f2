"""The local HTTP API (FastAPI, ``/api/v1``) for kiosks, screens, windows and hall software.

Routes are thin: they authenticate, then call :func:`hallctl.commands.dispatch`
(the same table MQTT commands use) or read from the service. Every error leaves
as ``application/problem+json`` (RFC 9457) with a stable ``code``; messages
never contain personal data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hallctl import __version__, commands
from hallctl import events as ev
from hallctl.auth import Principal, authenticate
from hallctl.context import HallContext
from hallctl.errors import Conflict, Forbidden, HallctlError, NotFound, Refused
from hallctl.http.streams import next_event, offer, sse_stream
from hallctl.http.voice import render_voice
from hallctl.reports.stats import day_stats
from hallctl.service import HallService
from hallctl.views import holder_view, ticket_view

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


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


class IssueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=3)
    priority: str | None = None
    priority_reason: str | None = None
    offer: str | None = None
    kiosk: str | None = None


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_category: str | None = None
    to_window: int | None = None


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=2, max_length=32)


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: str = Field(min_length=1, max_length=32)


class EvaluationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = Field(ge=1, le=5)
    reasons: tuple[str, ...] = ()


class WindowEvaluationBody(EvaluationBody):
    ticket_id: str | None = None


class AppointmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=3)
    slot_start: datetime
    slot_end: datetime
    code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,16}$")


class CheckInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kiosk: str | None = None


class ClimateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str | None = None
    target: float | None = None


class ReprintBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kiosk: str | None = None


async def principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Principal:
    """Bearer header, or ``?token=`` for EventSource, audio and page links that cannot set headers."""
    bearer = None
    if authorization and authorization.lower().startswith("bearer "):
        bearer = authorization[7:].strip()
    svc: HallService = request.app.state.service
    return await authenticate(svc.store, bearer or token)


Auth = Annotated[Principal, Depends(principal)]


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
    )
    app.state.service = svc
    app.state.ctx = ctx
    # Set by the server's stop: open streams end so clients see the restart and reconnect.
    app.state.closing = asyncio.Event()

    @app.exception_handler(HallctlError)
    async def _hallctl_error(request: Request, exc: HallctlError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.code)
        return problem(exc.http_status, exc.code, exc.title, exc.message, exc.message_en)

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
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), str(exc.detail))

    api = APIRouter(prefix="/api/v1")

    async def run(name: str, args: dict[str, Any], p: Principal) -> dict[str, Any]:
        return await commands.dispatch(ctx, name, args, p)

    @api.get("/health")
    async def health() -> JSONResponse:
        devices = {
            k: {"kind": d.device_kind, "state": d.state, "detail": d.detail, "since": d.since.isoformat()}
            for k, d in svc.devices.items()
        }
        extra = ctx.health()
        degraded = (
            svc.store.last_error is not None
            or any(d["state"] != "ok" for d in devices.values())
            or any(isinstance(v, dict) and v.get("ok") is False for v in extra.values())
        )
        body = {
            "status": "degraded" if degraded else "ok",
            "hall": svc.cfg.hall.id,
            "version": __version__,
            "uptime_s": round((svc.clock() - svc.started_at).total_seconds(), 1),
            "day": svc.q.day.isoformat(),
            "store": {
                "ok": svc.store.last_error is None,
                "write_errors": svc.store.write_errors,
                "last_error": svc.store.last_error,
            },
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
    async def kiosk(kiosk_id: str, p: Auth) -> dict[str, Any]:
        k = svc.cfg.kiosk_by_id(kiosk_id)
        if k is None:
            raise NotFound("unknown_kiosk", f"no kiosk {kiosk_id}")
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

    @api.post("/tickets", status_code=201)
    async def issue(body: IssueBody, p: Auth, idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        p.require("kiosk", "guide", "window")
        if idempotency_key is not None and not (1 <= len(idempotency_key) <= 128):
            raise Refused("bad_idempotency_key", "Idempotency-Key must be 1..128 characters")
        args = commands.parse_args(commands.COMMANDS["ticket.issue"], body.model_dump(exclude_none=True))
        assert isinstance(args, commands.IssueArgs)
        # The key is scoped to the token that sent it; it covers swipe (offer) issues too.
        key = f"{p.token_id}:{idempotency_key}" if idempotency_key is not None else None
        out = await commands.issue_ticket(svc, args, p, idempotency_key=key)
        headers = {"Idempotent-Replayed": "true"} if out.replayed else {}
        return JSONResponse(commands.issued_view(svc, out), status_code=201, headers=headers)

    @api.get("/tickets")
    async def list_tickets(
        p: Auth,
        state: str | None = None,
        category: str | None = None,
        day: Annotated[date | None, Query(alias="date")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        rows = await svc.store.tickets(day=day or svc.q.day, state=state, category=category, limit=limit)
        return [ticket_view(t) for t in rows]

    @api.get("/tickets/by-qr/{code}")
    async def by_qr(code: str, p: Auth) -> dict[str, Any]:
        p.require("window")
        t, holder = await svc.ticket_by_qr(code)
        if p.role != "admin":
            # Least privilege: a clerk sees the visitors of their own windows' queues, not the whole hall's.
            mine = {c for n in p.windows if (w := svc.cfg.window_by_number(n)) for c in w.categories}
            if not (t.window in p.windows or t.target_window in p.windows or t.category in mine):
                raise Forbidden("wrong_window", f"ticket {t.number} is not for this token's windows")
        return {"ticket": ticket_view(t), "holder": holder_view(holder) if holder else None}

    @api.get("/tickets/{ticket_id}")
    async def get_ticket(ticket_id: str, p: Auth) -> dict[str, Any]:
        t = await svc.ticket(ticket_id)
        view = ticket_view(t, waiting_ahead=svc.waiting_ahead(t) if t.state == "waiting" else None)
        if p.role == "admin":
            view["events"] = await svc.store.event_log(t.id)
        return view

    @api.post("/tickets/{ticket_id}/cancel")
    async def cancel(ticket_id: str, p: Auth) -> dict[str, Any]:
        p.require("guide", "kiosk")
        return ticket_view(await svc.cancel(ticket_id))

    @api.post("/tickets/{ticket_id}/reprint", status_code=202)
    async def reprint(ticket_id: str, p: Auth, body: ReprintBody | None = None) -> dict[str, Any]:
        p.require("guide", "kiosk")
        t = await svc.reprint(ticket_id, body.kiosk if body else None)
        return {"ticket": ticket_view(t), "queued": True}

    @api.post("/tickets/{ticket_id}/evaluation", status_code=201)
    async def evaluate_ticket(ticket_id: str, body: EvaluationBody, p: Auth) -> dict[str, Any]:
        t = await svc.ticket(ticket_id)
        if t.window is None:
            raise Conflict("ticket_not_served", f"ticket {t.number} has not been served")
        return await run(
            "window.evaluate", {"window": t.window, "level": body.level, "ticket_id": t.id, "reasons": body.reasons}, p
        )

    for action, name in (
        ("call-next", "window.call_next"),
        ("recall", "window.recall"),
        ("start", "window.start"),
        ("finish", "window.finish"),
        ("no-show", "window.no_show"),
        ("pause", "window.pause"),
        ("resume", "window.resume"),
        ("sign-out", "window.sign_out"),
    ):

        def make(cmd: str) -> Callable[[int, Principal], Awaitable[dict[str, Any]]]:
            async def handler(window: int, p: Auth) -> dict[str, Any]:
                return await run(cmd, {"window": window}, p)

            return handler

        api.add_api_route(f"/windows/{{window}}/{action}", make(name), methods=["POST"], name=name)

    @api.post("/windows/{window}/call")
    async def call_specific(window: int, body: CallBody, p: Auth) -> dict[str, Any]:
        return await run("window.call", {"window": window, "number": body.number}, p)

    @api.post("/windows/{window}/transfer")
    async def transfer(window: int, body: TransferBody, p: Auth) -> dict[str, Any]:
        return await run("window.transfer", {"window": window, **body.model_dump(exclude_none=True)}, p)

    @api.post("/windows/{window}/sign-in")
    async def sign_in(window: int, body: SignInBody, p: Auth) -> dict[str, Any]:
        return await run("window.sign_in", {"window": window, "staff": body.staff}, p)

    @api.post("/windows/{window}/evaluation", status_code=201)
    async def evaluate_window(window: int, body: WindowEvaluationBody, p: Auth) -> dict[str, Any]:
        return await run("window.evaluate", {"window": window, **body.model_dump(exclude_none=True)}, p)

    @api.get("/windows/{window}/queue")
    async def window_queue(window: int, p: Auth) -> dict[str, Any]:
        wcfg = svc.cfg.window_by_number(window)
        if wcfg is None:
            raise NotFound("unknown_window", f"no window {window}")
        waiting = sorted(svc.q.waiting(wcfg.categories), key=lambda t: t.order_key())
        mine = [t for t in svc.q.tickets.values() if t.window == window and t.day == svc.q.day]
        return {
            "window": svc.window_state(window).to_dict(),
            "waiting": [ticket_view(t) for t in waiting],
            "served_today": sum(1 for t in mine if t.state == "done"),
            "history": [ticket_view(t) for t in sorted(mine, key=lambda t: t.called_at or t.issued_at)[-20:]],
        }

    @api.post("/appointments", status_code=201)
    async def book(body: AppointmentBody, p: Auth) -> dict[str, Any]:
        p.require("guide")
        a = await svc.book(body.category, body.slot_start, body.slot_end, code=body.code)
        return {
            "code": a.code,
            "category": a.category,
            "slot_start": a.slot_start.isoformat(),
            "slot_end": a.slot_end.isoformat(),
            "state": a.state,
        }

    @api.post("/appointments/{code}/check-in", status_code=201)
    async def check_in(code: str, p: Auth, body: CheckInBody | None = None) -> dict[str, Any]:
        p.require("kiosk", "guide")
        out = await svc.check_in(code, body.kiosk if body else None)
        return ticket_view(
            out.ticket, waiting_ahead=out.waiting_ahead, qr=out.qr, estimated_wait_s=svc.estimated_wait_s(out.ticket)
        )

    @api.get("/stats")
    async def stats(p: Auth, day: Annotated[date | None, Query(alias="date")] = None) -> dict[str, Any]:
        return await day_stats(svc.store, svc.cfg, day or svc.q.day)

    @api.get("/stats/live")
    async def stats_live(p: Auth) -> dict[str, Any]:
        out = svc.live_stats()
        out["alerts"] = [a.to_dict() for a in ctx.supervision.recent(20)]
        out["sensors"] = [s.to_dict() for s in svc.sensors.values()]
        out["climate"] = [c.to_dict() for c in ctx.climate.snapshot()]
        out["stats"] = (await day_stats(svc.store, svc.cfg, svc.q.day))["total"]
        return out

    @api.get("/sensors/history")
    async def sensor_history(p: Auth, hours: Annotated[float, Query(gt=0, le=168)] = 6) -> list[dict[str, Any]]:
        from datetime import timedelta

        return await svc.store.readings(svc.clock() - timedelta(hours=hours))

    @api.get("/climate")
    async def climate(p: Auth) -> list[dict[str, Any]]:
        return [c.to_dict() for c in ctx.climate.snapshot()]

    @api.post("/climate/{zone}")
    async def set_climate(zone: str, body: ClimateBody, p: Auth) -> dict[str, Any]:
        return await run("climate.set", {"zone": zone, **body.model_dump(exclude_none=True)}, p)

    @api.get("/alerts")
    async def alerts(p: Auth) -> list[dict[str, Any]]:
        return [a.to_dict() for a in ctx.supervision.recent(100)]

    @api.get("/devices")
    async def devices(p: Auth) -> list[dict[str, Any]]:
        return [d.to_dict() for d in svc.devices.values()]

    @api.get("/events")
    async def sse(request: Request, p: Auth) -> StreamingResponse:
        return StreamingResponse(
            sse_stream(ctx, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get("/calls")
    async def calls(p: Auth, limit: Annotated[int, Query(ge=1, le=300)] = 9) -> list[dict[str, Any]]:
        """Recent calls (latest per ticket, newest first) with their announcements, as the events said them."""
        return [e.to_dict() for e in svc.recent_calls(limit)]

    @api.get("/voice/{ticket_id}.wav")
    async def voice(ticket_id: str, p: Auth) -> FileResponse:
        """The announcement of this ticket's latest call; only calls that happened are rendered."""
        call = svc.last_call(ticket_id)
        if call is None:
            raise NotFound("not_called", f"ticket {ticket_id} has not been called")
        if deps.voice_dir is None:
            raise NotFound("voice_disabled", "voice rendering is not configured")
        path = await render_voice(deps.voice_dir, call.announcement)
        return FileResponse(path, media_type="audio/wav")

    app.include_router(api)
    for router in ctx.routers:
        app.include_router(router)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, token: str | None = None) -> None:
        try:
            header = websocket.headers.get("authorization", "")
            bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
            await authenticate(svc.store, token or bearer)
        except HallctlError:
            # Closing before accept() would refuse the handshake with a bare 403; accept first so the
            # screen sees 4401 ("unauthorized") and can tell a bad token from a network fault.
            await websocket.accept()
            await websocket.close(code=4401)
            return
        await websocket.accept()
        queue: asyncio.Queue[ev.Event] = asyncio.Queue(maxsize=1000)
        sub = svc.bus.subscribe(f"ws.{id(websocket)}", lambda e: offer(queue, e))
        try:
            for e in ctx.snapshot():
                await websocket.send_json({"event": e.wire_name, "data": e.to_dict()})
            while True:
                nxt = await next_event(queue, app.state.closing, None)
                if nxt is None:
                    await websocket.close(code=1012)  # service restart: the client reconnects
                    return
                await websocket.send_json({"event": nxt.wire_name, "data": nxt.to_dict()})
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            await svc.bus.unsubscribe(sub)

    if deps.pages is not None:
        deps.pages(app)
    return app
