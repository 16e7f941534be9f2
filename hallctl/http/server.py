"""The API component: the hall's own HTTP server (:mod:`hallctl.http.wire`); FastAPI owns nothing."""

from __future__ import annotations

import errno
import logging
import socket

from fastapi import FastAPI

from hallctl import events as ev
from hallctl.bus import Subscription
from hallctl.context import HallContext
from hallctl.errors import ListenRefused
from hallctl.http.api import ApiDeps, create_app, front_door
from hallctl.http.limits import AcceptErrorFilter
from hallctl.http.wire import WireServer

log = logging.getLogger(__name__)


class ApiServer:
    """The command routes and FastAPI behind :class:`~hallctl.http.wire.WireServer` (uvicorn only for ``/ws``)."""

    name = "api"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.server: WireServer | None = None
        self.port: int | None = None
        self.app: FastAPI | None = None
        self._accept_filter: AcceptErrorFilter | None = None
        self._voice: Subscription | None = None

    async def start(self) -> None:
        cfg = self.ctx.cfg.api
        from kiosk_ui import mount_pages

        deps = ApiDeps(ctx=self.ctx, voice_dir=self.ctx.state_dir / "voice", pages=mount_pages)
        app = create_app(deps)
        self.app = app
        if app.state.voices is not None and self.ctx.cfg.screen.voice != "browser":
            # One render at a time, the latest calls kept when a burst outruns it.
            self._voice = self.ctx.bus.subscribe("voice", app.state.voices.on_call, (ev.TicketCalled,), maxsize=32)
        # asyncio logs EMFILE on accept with a traceback, once per retry: keep it to a line per interval.
        self._accept_filter = AcceptErrorFilter(cfg.accept_error_log_interval_s)
        logging.getLogger("asyncio").addFilter(self._accept_filter)
        server = WireServer(
            front_door(app, self.ctx),  # the command routes in front of FastAPI's middleware stack
            header_timeout_s=cfg.header_timeout_s,
            keep_alive_s=cfg.keep_alive_s,
            max_connections=cfg.max_connections,
        )
        # A taken port is one typed error (ListenRefused), said before anything is served.
        sock = bind_listener(cfg.host, cfg.port)
        try:
            await server.start(sock)
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"HTTP server failed to start on {cfg.host}:{cfg.port}: {exc}") from exc
        self.server = server
        self.ctx.report_health("http", server.stats)
        self.port = int(sock.getsockname()[1])
        log.info("API listening on http://%s:%d", cfg.host, self.port)

    async def stop(self) -> None:
        if self._voice is not None:
            sub, self._voice = self._voice, None
            await self.ctx.bus.unsubscribe(sub)
        if self.server is not None:
            if self.app is not None:
                self.app.state.closing.set()  # end SSE/WebSocket streams, or the stop waits on them
            server, self.server = self.server, None
            await server.stop(grace_s=5)
        if self._accept_filter is not None:
            logging.getLogger("asyncio").removeFilter(self._accept_filter)
            self._accept_filter = None
        if self.app is not None and self.app.state.voices is not None:
            await self.app.state.voices.close()  # the renderer child ends with the API


def bind_listener(host: str, port: int) -> socket.socket:
    """The API's listening socket, or :class:`ListenRefused` saying in one line why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart over TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenRefused(
                "port_in_use",
                f"端口 {port} 已被占用（另一个 hallctl 或演示正在运行？），请用 [api] port 或 --port 换一个端口",
                f"{host}:{port} is already in use (another hallctl or demo?); choose another port "
                "with [api] port or --port",
            ) from exc
        raise ListenRefused(
            "address_unusable",
            f"无法在 {host}:{port} 上监听：{exc.strerror}",
            f"cannot listen on {host}:{port}: {exc.strerror}",
        ) from exc
    return sock
