"""The admin console's API (``/api/v1/admin``): people log in with a session cookie, not a bearer token.

These routes are not in the command table on purpose: they belong to a person's browser
session (cookie + CSRF header), which MQTT has no notion of, and they change the hall's
configuration rather than its queue. Devices and integrators keep their bearer tokens.

Cookies: ``hallctl_admin`` (the session id; HttpOnly, SameSite=Strict, Secure over TLS,
Path=/) and ``hallctl_csrf`` (readable by the page). Every state-changing request must
send the CSRF value in ``X-CSRF-Token``; it is checked against the session, so a request
forged from another site (which cannot read the cookie) is refused.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from hallctl import events as ev
from hallctl.admin import AdminConsole, Session
from hallctl.admin.audit import audit_text
from hallctl.admin.photos import StaffPhotos
from hallctl.auth import bearer_token
from hallctl.config import ROLES, Config
from hallctl.context import HallContext
from hallctl.errors import Forbidden, NotFound, Refused

SESSION_COOKIE = "hallctl_admin"
CSRF_COOKIE = "hallctl_csrf"
CSRF_HEADER = "x-csrf-token"


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TotpStep(BaseModel):
    challenge: str = Field(min_length=1, max_length=128)
    code: str = Field(min_length=6, max_length=10)


class Code(BaseModel):
    code: str = Field(min_length=6, max_length=10)


class NewAccount(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str
    password: str = Field(min_length=1, max_length=1024)


class AccountChange(BaseModel):
    role: str | None = None
    disabled: bool | None = None


class NewToken(BaseModel):
    role: str
    windows: list[int] = []
    kiosks: list[str] = []
    label: str = Field(default="", max_length=64)


def config_view(cfg: Config) -> dict[str, Any]:
    """The editable parts of the config, as the console lists them."""
    dump = cfg.model_dump(mode="json")
    return {
        "category": dump["category"],
        "window": dump["window"],
        "staff": dump["staff"],
        "calendar": {k: dump["calendar"][k] for k in ("closed_days", "open_days")},
        "devices": [{"id": d.id, "kind": d.kind} for d in cfg.device],
        "device": [{**dump["device"][i], "printer_status": d.printer_status} for i, d in enumerate(cfg.device)],
        "kiosk": dump["kiosk"],
        "roles": list(ROLES),
        "timezone": cfg.hall.timezone,
    }


def _me(s: Session) -> dict[str, Any]:
    return {"name": s.name, "role": s.role, "totp_enabled": s.totp_enabled, "csrf": s.csrf}


async def apply_edit(
    console: AdminConsole, ctx: HallContext, s: Session, table: str, key: str, fields: dict[str, Any] | None
) -> dict[str, Any] | None:
    """tomlkit is imported at the first edit, not at the daemon's start."""
    from hallctl.admin.edits import apply_edit as edit

    return await edit(console, ctx.service, s, table, key, fields, ctx.config_appliers)


def session_of(console: AdminConsole, request: Request, *, write: bool = False) -> Session:
    """The request's console session; a write must also carry the session's CSRF token."""
    s = console.session(request.cookies.get(SESSION_COOKIE))
    if write and request.headers.get(CSRF_HEADER) != s.csrf:
        raise Forbidden("csrf", "请求缺少有效的安全令牌，请刷新页面", "missing or wrong CSRF token; reload the page")
    return s


def admin_router(ctx: HallContext, console: AdminConsole, photos: StaffPhotos) -> APIRouter:
    # Not in the OpenAPI document: a cookie session with a CSRF header is not how integrators call the
    # API (they use bearer tokens and the command table); docs/api.md lists these routes.
    api = APIRouter(prefix="/api/v1/admin", tags=["admin"], include_in_schema=False)
    svc = ctx.service

    def session(request: Request, *, write: bool = False) -> Session:
        return session_of(console, request, write=write)

    def opened(request: Request, sid: str, s: Session) -> JSONResponse:
        resp = JSONResponse(_me(s))
        secure = request.url.scheme == "https"
        max_age = int(ctx.cfg.admin.session_max_hours * 3600)
        resp.set_cookie(SESSION_COOKIE, sid, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")
        resp.set_cookie(CSRF_COOKIE, s.csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure)
        return resp

    @api.post("/login")
    async def login(request: Request, body: Login) -> JSONResponse:
        result = await console.login(body.name, body.password)
        if isinstance(result, str):
            return JSONResponse({"totp_required": True, "challenge": result})
        return opened(request, *result)

    @api.post("/login/totp")
    async def login_totp(request: Request, body: TotpStep) -> JSONResponse:
        return opened(request, *await console.login_totp(body.challenge, body.code))

    @api.post("/logout")
    async def logout(request: Request) -> JSONResponse:
        session(request, write=True)
        await console.logout(request.cookies.get(SESSION_COOKIE, ""))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(CSRF_COOKIE)
        return resp

    @api.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return _me(session(request))

    # ---- accounts and the second factor --------------------------------------------------------

    @api.get("/accounts")
    async def accounts(request: Request) -> list[dict[str, Any]]:
        session(request)
        return await console.accounts()

    @api.post("/accounts", status_code=201)
    async def add_account(request: Request, body: NewAccount) -> dict[str, Any]:
        s = session(request, write=True)
        console.require_edit(s)
        return await console.add_account(body.name, body.role, body.password, s.name)

    @api.put("/accounts/{name}")
    async def change_account(request: Request, name: str, body: AccountChange) -> dict[str, Any]:
        """Another account's role, or disabled (its sessions end at once) / enabled again."""
        s = session(request, write=True)
        console.require_edit(s)
        return await console.change(name, s.name, role=body.role, disabled=body.disabled)

    @api.post("/accounts/{name}/unlock")
    async def unlock(request: Request, name: str) -> dict[str, Any]:
        s = session(request, write=True)
        console.require_edit(s)
        await console.unlock(name, s.name)
        return {"ok": True}

    @api.post("/totp/enroll")
    async def totp_enroll(request: Request) -> dict[str, Any]:
        s = session(request, write=True)
        secret, uri = console.totp_offer(s)
        return {"secret": secret, "uri": uri, "qr_svg": _qr_svg(uri)}

    @api.post("/totp/confirm")
    async def totp_confirm(request: Request, body: Code) -> dict[str, Any]:
        s = session(request, write=True)
        await console.totp_confirm(s, body.code)
        return _me(s)

    # ---- configuration ----------------------------------------------------------------------------

    @api.get("/config")
    async def get_config(request: Request) -> dict[str, Any]:
        session(request)
        view = config_view(svc.cfg)
        for row in view["device"]:  # each device's health now, beside its entry (the 设备 view)
            d = svc.devices.get(row["id"])
            row["health"] = (
                {"state": d.state, "detail": d.detail, "detail_zh": d.detail_zh}
                if d is not None
                else {"state": "unknown", "detail": "", "detail_zh": ""}
            )
        return view

    @api.put("/config/calendar")
    async def put_calendar(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any] | None:
        s = session(request, write=True)
        return await apply_edit(console, ctx, s, "calendar", "", body)

    @api.put("/config/{table}/{key}")
    async def put_entry(
        request: Request, table: str, key: str, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any] | None:
        s = session(request, write=True)
        return await apply_edit(console, ctx, s, table, key, body)

    @api.delete("/config/{table}/{key}")
    async def delete_entry(request: Request, table: str, key: str) -> dict[str, Any]:
        s = session(request, write=True)
        await apply_edit(console, ctx, s, table, key, None)
        return {"ok": True}

    # ---- tokens (devices, screens, integrators) --------------------------------------------------------

    @api.get("/tokens")
    async def tokens(request: Request) -> list[dict[str, Any]]:
        session(request)
        return await ctx.auth.tokens()

    @api.post("/tokens", status_code=201)
    async def create_token(request: Request, body: NewToken) -> dict[str, Any]:
        s = session(request, write=True)
        console.require_edit(s)
        try:
            token = await ctx.auth.create(body.role, tuple(body.windows), body.label, kiosks=tuple(body.kiosks))
        except ValueError as exc:
            raise Refused("invalid_token_request", f"无法创建令牌：{exc}", f"cannot create the token: {exc}") from exc
        after = {"role": body.role, "windows": body.windows, "kiosks": body.kiosks, "label": body.label}
        await console.store.audit(console.clock(), s.name, "token.create", f"token:{body.label}", None, after)
        return {"token": token, **after}

    @api.delete("/tokens/{token_id}")
    async def revoke_token(request: Request, token_id: int) -> dict[str, Any]:
        s = session(request, write=True)
        console.require_edit(s)
        if not await ctx.auth.revoke(token_id):
            raise NotFound("unknown_token", f"没有令牌 {token_id} 或已吊销", f"no active token {token_id}")
        await console.store.audit(
            console.clock(), s.name, "token.revoke", f"token:{token_id}", {"revoked": False}, {"revoked": True}
        )
        return {"ok": True}

    @api.put("/staff/{staff_id}/photo")
    async def put_photo(request: Request, staff_id: str) -> dict[str, Any]:
        """The staff member's photo for 亮牌上岗 (JPEG or PNG as the raw body, at most 60 KB)."""
        s = session(request, write=True)
        console.require_edit(s)
        if svc.cfg.staff_by_id(staff_id) is None:
            raise NotFound("unknown_staff", f"没有工号 {staff_id}", f"no staff {staff_id}")
        data = await request.body()
        meta = await photos.save(staff_id, data)
        await console.store.audit(console.clock(), s.name, "staff.photo", f"staff:{staff_id}", None, meta)
        # Window pages showing this clerk fetch the new photo (not a config change: the version stays).
        ctx.bus.publish(ev.ConfigChanged(at=svc.clock(), sections=("staff_photo",), version=svc.config_version))
        return meta

    @api.get("/qr.svg")
    async def qr(request: Request, data: Annotated[str, Query(min_length=1, max_length=1024)]) -> Response:
        """A QR of a screen's address with its token, to provision a screen by pointing a camera at it."""
        session(request)
        return Response(_qr_svg(data), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    # ---- audit ----------------------------------------------------------------------------------

    @api.get("/audit")
    async def audit(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
        session(request)
        return [r.to_dict() for r in await console.store.audit_rows(limit=limit, newest_first=True)]

    @api.get("/audit/verify")
    async def audit_verify(request: Request) -> dict[str, Any]:
        session(request)
        checked, bad, reason = await console.store.verify_audit()
        return {"ok": bad is None, "rows": checked, "first_bad": bad, "reason": reason}

    @api.get("/audit/export")
    async def audit_export(
        request: Request,
        since: Annotated[datetime | None, Query()] = None,
        fmt: Annotated[str, Query(alias="format", pattern="^(csv|jsonl)$")] = "csv",
    ) -> Response:
        s = session(request)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        rows = await console.store.audit_rows(since=since)
        await console.store.audit(console.clock(), s.name, "audit.export", "audit_log", None, {"rows": len(rows)})
        text = audit_text([r.to_dict() for r in rows], fmt)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        name = f"audit-{console.clock().date().isoformat()}.{fmt}"
        return Response(text, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return api


def staff_photo_router(ctx: HallContext, photos: StaffPhotos) -> APIRouter:
    """``GET /api/v1/staff/{id}/photo``: what the window page shows beside the clerk's name (any token)."""
    api = APIRouter(prefix="/api/v1")

    @api.get("/staff/{staff_id}/photo", include_in_schema=False)
    async def photo(request: Request, staff_id: str, token: str | None = None) -> Response:
        await ctx.auth.authenticate(bearer_token(request.headers.get("authorization")) or token)
        found = photos.find(staff_id)
        if found is None:
            raise NotFound("no_photo", f"工号 {staff_id} 没有照片", f"no photo of staff {staff_id}")
        media, data = found
        return Response(data, media_type=media, headers={"Cache-Control": "no-cache"})

    return api


def _qr_svg(data: str) -> str:
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue().decode("utf-8")
