"""The API component: uvicorn's ``Server`` in a task; FastAPI receives handles and owns nothing."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from hallctl import events as ev
from hallctl.bus import Subscription
from hallctl.context import HallContext
from hallctl.errors import ListenRefused
from hallctl.http.api import ApiDeps, create_app, front_door
from hallctl.http.limits import AcceptErrorFilter, protocol_class

log = logging.getLogger(__name__)


class ApiServer:
    """uvicorn's ``Server`` in a task; FastAPI receives handles and owns nothing."""

    name = "api"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
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
        config = uvicorn.Config(
            front_door(app, self.ctx),  # the command routes in front of FastAPI's middleware stack
            host=cfg.host,
            port=cfg.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ws=LazyWebSocketProtocol,  # websockets is imported at the first WebSocket, not at start
            # httptools with a head size cap, a header-read timeout and a connection cap that evicts idle ones first.
            http=protocol_class(cfg.header_timeout_s, cfg.max_connections),
            timeout_keep_alive=cfg.keep_alive_s,
        )
        # asyncio logs EMFILE on accept with a traceback, once per retry: keep it to a line per interval.
        self._accept_filter = AcceptErrorFilter(cfg.accept_error_log_interval_s)
        logging.getLogger("asyncio").addFilter(self._accept_filter)
        self.server = uvicorn.Server(config)
        # Bound here rather than by uvicorn: on a taken port uvicorn logs and calls sys.exit inside
        # the task, which escapes the loop as a 60-line traceback. Ours is one typed error.
        sock = bind_listener(cfg.host, cfg.port)
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]), name="hallctl.api.server")
        while not self.server.started:
            if self._task.done():
                exc = self._task.exception()
                raise RuntimeError(f"HTTP server failed to start on {cfg.host}:{cfg.port}: {exc}")
            await asyncio.sleep(0.01)
        self.port = int(sock.getsockname()[1])
        log.info("API listening on http://%s:%d", cfg.host, self.port)

    async def stop(self) -> None:
        if self._voice is not None:
            sub, self._voice = self._voice, None
            await self.ctx.bus.unsubscribe(sub)
        if self.server is not None and self._task is not None:
            if self.app is not None:
                self.app.state.closing.set()  # end SSE/WebSocket streams, or uvicorn waits on them
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    async with asyncio.timeout(5):
                        await self._task
                except TimeoutError:
                    self._task.cancel()
            self._task = None
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


class LazyWebSocketProtocol(asyncio.Protocol):
    """uvicorn's WebSocket protocol, imported when the first client upgrades to a WebSocket.

    uvicorn imports its WebSocket implementation (the ``websockets`` library, ≈0.6 MiB of
    idle RSS) at start. The hall's own pages stream over SSE; ``/ws`` is for other clients,
    and many halls never have one (issue 12, goal 4: import what a hall uses). uvicorn only
    ever calls the class it is given, with keyword arguments, at an upgrade, so this class
    hands back the real protocol there: ``websockets``' sans-I/O implementation when the
    installed version has it, else what uvicorn would choose by itself.
    """

    def __new__(cls, **kwargs: Any) -> asyncio.Protocol:  # type: ignore[misc]
        return _ws_protocol_class()(**kwargs)


@functools.cache
def _ws_protocol_class() -> Callable[..., asyncio.Protocol]:
    from uvicorn.config import WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    try:
        import websockets.asyncio  # noqa: F401
    except ImportError:
        name = "auto"
    else:
        name = "websockets-sansio"
    protocol: Callable[..., asyncio.Protocol] = import_from_string(WS_PROTOCOLS[name])
    return protocol
