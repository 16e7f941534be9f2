"""The hall's web pages, served by the daemon from this package (works offline).

Every page is a static HTML file plus plain JavaScript under ``static/``; there
is no build step and nothing is fetched from the internet (ECharts is vendored
under ``static/vendor/``), because a hall's LAN usually has no way out.

Pages authenticate like any API client: a token given once as ``?token=`` is
kept in the browser's localStorage, and EventSource/audio URLs carry it as a
query parameter because they cannot set headers. The pages themselves hold no
data; what they show comes from ``/api/v1`` and its event stream, so the API's
role checks decide who sees what (full holder details need a window token).
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from hallctl.auth import Authenticator, bearer_token
from hallctl.config import Config
from hallctl.errors import HallctlError, NotFound

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"
PAGES = PACKAGE / "pages"

# Pages are cheap to reload and must pick up a new daemon version at once.
_NO_CACHE = {"Cache-Control": "no-cache"}


def _cfg(request: Request) -> Config:
    cfg: Config = request.app.state.service.cfg
    return cfg


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.ctx.auth
    return auth


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES / f"{name}.html", media_type="text/html; charset=utf-8", headers=_NO_CACHE)


def ui_config(cfg: Config) -> dict[str, Any]:
    """What every page needs to draw the hall: names and layout only, never personal data or tokens."""
    return {
        "hall": {
            "id": cfg.hall.id,
            "name": cfg.hall.name,
            "name_en": cfg.hall.name_en,
            "notice": cfg.hall.notice,
            "notice_en": cfg.hall.notice_en,
            "timezone": cfg.hall.timezone,
        },
        "screen": {"announce_repeat": cfg.screen.announce_repeat, "voice": cfg.screen.voice},
        "categories": [
            {
                "prefix": c.prefix,
                "name": c.name,
                "name_en": c.name_en,
                "hours": list(c.hours),
                "target_wait_minutes": c.target_wait_minutes,
                "guide": list(c.guide),
                "guide_en": list(c.guide_en),
            }
            for c in cfg.category
        ],
        "windows": [
            {
                "number": w.number,
                "name": w.name or f"{w.number}号窗口",
                "name_en": w.name_en or f"Window {w.number}",
                "floor": w.floor,
                "categories": list(w.categories),
            }
            for w in cfg.window
        ],
        "kiosks": [
            {"id": k.id, "floor": k.floor, "categories": list(k.categories), "printer": k.printer, "reader": k.reader}
            for k in cfg.kiosk
        ],
        "sensors": [
            {"id": s.id, "name": s.name or s.id, "name_en": s.name_en or s.name or s.id, "floor": s.floor}
            for s in cfg.sensor
        ],
        "climate_zones": [
            {"id": z.id, "name": z.name or z.id, "name_en": z.name_en or z.name or z.id, "floor": z.floor}
            for z in cfg.climate_zone
        ],
        "evaluation_timeout_s": cfg.queue.evaluation_timeout_s,
        "green_reasons": [{"id": r.id, "name": r.name, "name_en": r.name_en} for r in cfg.guide.green_reasons],
        "guide_kiosk": cfg.guide.kiosk,  # the desk's own printer's kiosk entry, or null
        "bad_rating_reasons": [{"name": r.name, "name_en": r.name_en} for r in cfg.supervision.bad_rating_reasons],
        "appointments": {
            "slot_minutes": cfg.appointments.slot_minutes,
            "max_days_ahead": cfg.appointments.max_days_ahead,
        },
    }


def _demo_tokens(request: Request) -> dict[str, str]:
    """The demo keeps its tokens in a file; only the demo index (opened with the admin token) reads it."""
    ctx = request.app.state.ctx
    if not ctx.demo:
        return {}
    path = Path(ctx.state_dir) / "tokens.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _link(path: str, token: str | None) -> str:
    return f"{path}?token={quote(token)}" if token else path


def render_index(cfg: Config, tokens: dict[str, str], demo: bool, admin: bool) -> str:
    """The list of screens. In the demo, opened with the admin token, each link carries its role's token."""
    e = html.escape
    rows: list[tuple[str, str, str, str]] = []  # (href, zh, en, size)
    for k in cfg.kiosk:
        cats = "、".join(k.categories)
        rows.append(
            (
                _link(f"/kiosk/{k.id}", tokens.get("kiosk")),
                f"取号机 {k.id}（{k.floor}楼，{cats}类）",
                f"Ticket kiosk {k.id}",
                "1080×1920",
            )
        )
    rows.append((_link("/screen", tokens.get("display")), "叫号屏", "Calling screen", "1920×1080"))
    for w in cfg.window:
        rows.append(
            (
                _link(f"/window/{w.number}", tokens.get(f"window{w.number}")),
                f"窗口终端 · {w.name or str(w.number) + '号窗口'}",
                f"Window terminal {w.number}",
                "",
            )
        )
    for w in cfg.window:
        rows.append(
            (
                _link(f"/pad/{w.number}", tokens.get(f"pad{w.number}")),
                f"评价器 · {w.number}号窗口",
                f"Evaluation pad {w.number}",
                "平板 tablet",
            )
        )
    rows.append((_link("/bigscreen", tokens.get("display")), "数据大屏", "Data big screen", "1920×1080"))
    rows.append((_link("/board", tokens.get("display")), "日公示", "Daily public board", "1920×1080"))
    rows.append((_link("/guide", tokens.get("guide")), "导办台", "Guide desk", "1366×768"))
    items = "\n".join(
        f'<li><a href="{e(href)}">{e(zh)}</a> <span class="en">{e(en)}</span>'
        f"{f' <span class=size>{e(size)}</span>' if size else ''}</li>"
        for href, zh, en, size in rows
    )
    if tokens:
        hint = (
            "<p class=ok>演示模式：下面的链接已带上各角色的令牌，点击即可使用。"
            "<span class=en>Demo: each link carries its role's token.</span></p>"
        )
    elif demo and not admin:
        hint = (
            "<p class=warn>演示模式：请用启动时打印的链接（含管理员令牌）打开本页，链接会自动带上令牌。"
            "<span class=en>Open this page with the admin token printed by <code>hallctl demo</code>.</span></p>"
        )
    else:
        hint = (
            "<p>各页面首次打开时需要令牌：在地址后加 <code>?token=…</code>"
            "（由 <code>hallctl token create</code> 生成），或在页面提示中输入。"
            "<span class=en>Each page asks for a token once (?token=…).</span></p>"
        )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(cfg.hall.name)} · hallctl</title>
<link rel="stylesheet" href="/static/common.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head><body class="index">
<h1>{e(cfg.hall.name)}</h1>
<p class="en">{e(cfg.hall.name_en)}</p>
{hint}
<h2>屏幕 <span class="en">Screens</span></h2>
<ul class="screens">
{items}
</ul>
<h2>接口 <span class="en">API</span></h2>
<ul class="screens">
<li><a href="/admin">管理后台</a> <span class="en">Admin console (log in with an account)</span></li>
<li><a href="/docs">API 文档</a> <span class="en">OpenAPI docs</span></li>
<li><a href="/api/v1/health">运行状态</a> <span class="en">Health</span></li>
</ul>
<p class="en">Screen sizes and kiosk-mode Chromium flags: docs/screens.md</p>
</body></html>"""


def mount_pages(app: FastAPI) -> None:
    """Attach the pages, their static files and two small page helpers to the API app."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def _principal_ok(request: Request, token: str | None) -> bool:
        try:
            await _auth(request).authenticate(bearer_token(request.headers.get("authorization")) or token)
        except HallctlError:
            return False
        return True

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it on every page that names none; an SVG answers where a 404 was logged.
        return FileResponse(
            STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request, token: str | None = None) -> HTMLResponse:
        cfg = _cfg(request)
        tokens: dict[str, str] = {}
        admin = False
        if token:
            try:
                p = await _auth(request).authenticate(token)
                admin = p.role == "admin"
            except HallctlError:
                admin = False
        if admin:
            tokens = _demo_tokens(request)
        demo = bool(request.app.state.ctx.demo)
        return HTMLResponse(render_index(cfg, tokens, demo, admin), headers=_NO_CACHE)

    @app.get("/kiosk/{kiosk_id}", include_in_schema=False)
    async def kiosk_page(request: Request, kiosk_id: str) -> FileResponse:
        if _cfg(request).kiosk_by_id(kiosk_id) is None:
            raise NotFound("unknown_kiosk", f"没有取号机 {kiosk_id}", f"no kiosk {kiosk_id}")
        return _page("kiosk")

    @app.get("/screen", include_in_schema=False)
    async def screen_page() -> FileResponse:
        return _page("screen")

    @app.get("/window/{number}", include_in_schema=False)
    async def window_page(request: Request, number: int) -> FileResponse:
        if _cfg(request).window_by_number(number) is None:
            raise NotFound("unknown_window", f"没有{number}号窗口", f"no window {number}")
        return _page("window")

    @app.get("/pad/{number}", include_in_schema=False)
    async def pad_page(request: Request, number: int) -> FileResponse:
        if _cfg(request).window_by_number(number) is None:
            raise NotFound("unknown_window", f"没有{number}号窗口", f"no window {number}")
        return _page("pad")

    @app.get("/bigscreen", include_in_schema=False)
    async def bigscreen_page() -> FileResponse:
        return _page("bigscreen")

    @app.get("/board", include_in_schema=False)
    async def board_page() -> FileResponse:
        return _page("board")

    @app.get("/guide", include_in_schema=False)
    async def guide_page() -> FileResponse:
        return _page("guide")

    @app.get("/admin", include_in_schema=False)
    async def admin_page() -> FileResponse:
        """The admin console: it logs people in itself (session cookie), so the page is served to anyone."""
        return _page("admin")

    @app.get("/ui/config.json", include_in_schema=False)
    async def config_json(request: Request, token: str | None = None) -> JSONResponse:
        # Any valid token will do: the layout is not secret, but an unauthenticated page
        # must learn at once that it needs a token, before it opens the event stream.
        if not await _principal_ok(request, token):
            body = {"code": "bad_token", "detail": "需要有效的令牌", "detail_en": "a valid token is needed"}
            return JSONResponse(body, status_code=401, media_type="application/problem+json")
        ctx = request.app.state.ctx
        # ``now``: the hall's clock, so a screen whose own clock is wrong (a box without NTP) still shows
        # the hall's time and day (common.js Hall.now keeps the offset, measured with the round trip).
        body = ui_config(_cfg(request)) | {"demo": bool(ctx.demo), "now": ctx.service.clock().isoformat()}
        return JSONResponse(body, headers=_NO_CACHE)

    @app.get("/ui/qr.svg", include_in_schema=False)
    async def qr_svg(
        request: Request, data: str = Query(min_length=1, max_length=512), token: str | None = None
    ) -> Response:
        """The ticket's QR as SVG, for the demo's simulated printed ticket on the kiosk screen."""
        if not await _principal_ok(request, token):
            return Response(status_code=401)
        import qrcode
        import qrcode.image.svg

        img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
        buf = io.BytesIO()
        img.save(buf)
        return Response(buf.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
