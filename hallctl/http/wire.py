"""The hall daemon's HTTP/1.1 server: bytes on a socket to ASGI 3 calls and back.

Why not uvicorn: importing it costs the daemon ≈3 MiB of idle RSS (its CLI pulls in
click, multiprocessing and logging.config; issue 12, goal 4), and its per-request
plumbing (the cycle, the proxy-headers middleware, the task start) was ≈15 % of the
event loop's time with 64 kiosks (goal 1). This server is uvicorn's httptools protocol
(llhttp, in C) reduced to what a hall needs: no TLS, no proxy headers, no lifespan, no
access log. What it keeps, because clients rely on it: keep-alive, pipelining answered in
order, ``Expect: 100-continue``, HEAD, chunked bodies both ways, back-pressure in both
directions, and the protections in front of the app (:data:`MAX_HEAD_BYTES`, the header
timeout, the connection cap, problem+json for what cannot be parsed).

A WebSocket upgrade is handed to uvicorn's WebSocket protocol, as uvicorn itself does:
uvicorn (and ``websockets``) are imported at the first upgrade, never before.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import re
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, cast

import httptools

from hallctl.http.limits import MAX_HEAD_BYTES, PROBLEM, ASGIApp, Message, problem_bytes

if TYPE_CHECKING:
    import uvicorn
    from uvicorn.server import ServerState

log = logging.getLogger(__name__)

READ_HIGH_WATER = 64 * 1024  # a request body buffered past this pauses reading until the app takes it
BACKLOG = 2048  # as uvicorn: a burst of connections (or an fd shortage) waits in the kernel's queue

_HEADER_NAME_BAD = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_HEADER_VALUE_BAD = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
# Answers' header names already found valid, lowercased: the apps use a few dozen names, so each is
# checked once rather than per answer; bounded, should an app ever make names up.
_checked_names: dict[bytes, bytes] = {}
_CHECKED_NAMES_MAX = 512


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


STATUS_LINE = {status: _status_line(status) for status in range(100, 600)}
_DISCONNECT: Message = {"type": "http.disconnect"}


def _noop() -> None:
    return None


class WireServer:
    """The listening socket's connections, their request tasks, and what they share.

    One per :class:`hallctl.http.server.ApiServer`. It knows every open HTTP connection
    (for the connection cap and for a graceful stop) and every running request (a stop
    waits for them within a bound).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header_timeout_s: float,
        keep_alive_s: float,
        max_connections: int,
    ) -> None:
        self.app = app
        self.header_timeout_s = header_timeout_s
        self.keep_alive_s = keep_alive_s
        self.max_connections = max_connections
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.emptied = asyncio.Event()  # set when the last HTTP connection is gone (for the stop)
        self._server: asyncio.Server | None = None
        self._date_at = 0
        self._date = b""
        self._ws: _WebSockets | None = None

    async def start(self, sock: Any) -> None:
        """Serve on ``sock`` (already bound: :func:`hallctl.http.server.bind_listener`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: HttpProtocol(self, loop), sock=sock, backlog=BACKLOG)

    def open_connections(self) -> int:
        """HTTP connections and WebSockets: the cap counts both (a WebSocket is a stream too)."""
        return len(self.connections) + (len(self._ws.state.connections) if self._ws is not None else 0)

    def date(self) -> bytes:
        """The ``date`` header's value, formatted once per second rather than per response."""
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True).encode()
        return self._date

    def stats(self) -> dict[str, int]:
        """Health's ``http`` section: a client that stops reading shows as buffered bytes here, bounded."""
        buffered = [c.transport.get_write_buffer_size() for c in self.connections if c.transport is not None]
        return {
            "connections": len(self.connections),
            "websockets": len(self._ws.state.connections) if self._ws is not None else 0,
            "requests": self.requests,
            "in_flight": len(self.tasks),
            "write_buffer_max_bytes": max(buffered, default=0),
            "writes_paused": sum(1 for c in self.connections if c.write_paused),
        }

    def websocket_protocol(self) -> asyncio.Protocol:
        """uvicorn's WebSocket protocol for one upgrading connection (uvicorn is imported at the first)."""
        if self._ws is None:
            self._ws = _WebSockets(self.app)
        return self._ws.protocol(self.date())

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, close idle connections, let requests in flight finish within ``grace_s``, close the rest.

        The app's streams end by themselves (``app.state.closing``, set before this);
        what still runs after ``grace_s`` is cancelled and its connection aborted.
        """
        if self._server is not None:
            self._server.close()
        for c in list(self.connections):
            c.shutdown()
        ws_tasks: set[asyncio.Task[None]] = set()
        if self._ws is not None:
            for w in list(self._ws.state.connections):
                w.shutdown()
            ws_tasks = self._ws.state.tasks
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        pending = {t for t in (*self.tasks, *ws_tasks) if not t.done()}
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace_s)
            if late:
                log.warning("%d request(s) still running %.0f s after stop: cancelled", len(late), grace_s)
                for t in late:
                    t.cancel()
                await asyncio.wait(late, timeout=1)
        for c in list(self.connections):
            c.shutdown()  # answered since: closed now that it is idle
        # Closing connections flush their last answer; wait for that within the bound, then cut.
        if self.connections:
            self.emptied.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self.emptied.wait()
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.abort()
        if self._ws is not None:
            for w in list(self._ws.state.connections):
                transport = getattr(w, "transport", None)
                if transport is not None:
                    transport.abort()
        if self._server is not None:
            server, self._server = self._server, None
            try:
                async with asyncio.timeout(1):
                    await server.wait_closed()
            except TimeoutError:
                log.warning("HTTP listener did not close within 1 s")


class _WebSockets:
    """uvicorn's WebSocket protocol and the ``Config``/``ServerState`` it needs, built at the first upgrade."""

    def __init__(self, app: ASGIApp) -> None:
        import uvicorn
        from uvicorn.server import ServerState

        self.config: uvicorn.Config = uvicorn.Config(
            app,
            ws=_ws_implementation(),
            lifespan="off",
            interface="asgi3",  # the front door's __call__ returns its coroutine: not an async def
            log_config=None,  # the daemon's logging stays as configured (no dictConfig)
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # as the HTTP side: the client is the peer
            server_header=False,
        )
        self.config.load()
        self.state: ServerState = ServerState()

    def protocol(self, date: bytes) -> asyncio.Protocol:
        self.state.default_headers = [(b"date", date)]
        cls = self.config.ws_protocol_class
        assert cls is not None
        protocol: asyncio.Protocol = cls(config=self.config, server_state=self.state, app_state={})  # type: ignore[call-arg]
        return protocol


def _ws_implementation() -> str:
    """``websockets``' sans-I/O implementation when the installed version has it, else uvicorn's choice."""
    from uvicorn.config import WS_PROTOCOLS

    try:
        import websockets.asyncio  # noqa: F401
    except ImportError:
        return "auto"
    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto"


class HttpProtocol(asyncio.Protocol):
    """One client connection: httptools parses, a :class:`Cycle` per request talks to the app.

    Requests on one connection run one at a time, in order (a pipelined request waits in
    ``pipeline`` and reading pauses meanwhile). Until a request's headers are complete the
    connection is on the clock (``header_timeout_s``, also between keep-alive requests) and
    its head is counted against :data:`MAX_HEAD_BYTES` (llhttp has no limit of its own).
    """

    def __init__(self, server: WireServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.parser = httptools.HttpRequestParser(self)
        # Answer the first of pipelined requests even if the client sent "Connection: close" after it.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self.local: tuple[str, int] | None = None
        self.peer: tuple[str, int] | None = None
        self.opened_at = 0.0
        self.cycle: Cycle | None = None  # the latest request parsed
        self.active: Cycle | None = None  # the request being answered (earlier than ``cycle`` when pipelined)
        self.pipeline: deque[Cycle] = deque()
        self.read_paused = False
        self.write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        # Two deadlines (loop time, None: not running) behind one timer that re-arms itself when it
        # fires early: a busy keep-alive connection moves a number per request, not a timer.
        self._header_at: float | None = None  # the request line and headers must be in by then
        self._idle_at: float | None = None  # an idle keep-alive connection closes then
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.head_done = False  # the current request's headers are complete
        self._head_bytes = 0
        self._completed_in_feed = False
        # The request being parsed.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect_continue = False

    # ---- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but the same interface
        self.transport = transport
        self.opened_at = time.monotonic()
        self.local = _addr(transport.get_extra_info("sockname"))
        self.peer = _addr(transport.get_extra_info("peername"))
        conns = self.server.connections
        conns.add(self)
        if self.server.open_connections() > self.server.max_connections and not self._make_room():
            log.warning("connection refused: %d connections open (max_connections)", self.server.open_connections())
            conns.discard(self)
            transport.close()
            return
        self._header_at = self.loop.time() + self.server.header_timeout_s
        self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        conns = self.server.connections
        conns.discard(self)
        if not conns:
            self.server.emptied.set()
        self._disarm()
        for cycle in {self.active, self.cycle, *self.pipeline}:
            if cycle is not None:
                if not cycle.response_complete:
                    cycle.disconnected = True
                cycle.wake()
        self.pipeline.clear()
        self._writable.set()  # a send() waiting for the client to read gives up now

    def eof_received(self) -> None:
        return None  # half-close: answer what was asked, then close

    def pause_writing(self) -> None:
        self.write_paused = True
        self._writable.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writable.set()

    async def drain(self) -> None:
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def waiting_for_headers(self) -> bool:
        """Idle or part-way through a head, nothing being answered: the first to go at the cap."""
        return (
            not self.head_done
            and (self.cycle is None or self.cycle.response_complete)
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def _make_room(self) -> bool:
        idle = [c for c in self.server.connections if c is not self and c.waiting_for_headers()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.opened_at)
        self.server.connections.discard(oldest)
        if oldest.transport is not None:
            oldest.transport.close()
        return True

    def _disarm(self) -> None:
        self._header_at = self._idle_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        """Have the timer fire by the earliest deadline (an earlier timer stays: it re-arms when it fires)."""
        at = self._header_at
        idle_at = self._idle_at
        if at is None or (idle_at is not None and idle_at < at):
            at = idle_at
        if at is None:
            return
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._deadline)

    def _deadline(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        now = self.loop.time()
        if self._header_at is not None and self._header_at <= now:
            self._header_at = None
            if self.waiting_for_headers():
                transport.close()  # slowloris, or a keep-alive connection that never asked again
                return
        if self._idle_at is not None and self._idle_at <= now:
            self._idle_at = None
            transport.close()
            return
        self._schedule()

    def shutdown(self) -> None:
        """The server stops: close now if idle, else after the answer under way."""
        if self.cycle is None or self.cycle.response_complete:
            if self.transport is not None:
                self.transport.close()
        else:
            self.cycle.keep_alive = False

    # ---- bytes in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._idle_at = None
        self._completed_in_feed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send_400_response("invalid HTTP request")
            return
        except httptools.HttpParserUpgrade:
            if self._upgrade() == b"websocket":
                self._to_websocket()
                return
            log.warning("unsupported upgrade request: answered as plain HTTP")
        if not self.head_done and not self._completed_in_feed:
            # A feed that finished a request counts nothing for the next: at most one read under-counted.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.send_400_response("request line and headers too large")

    def send_400_response(self, msg: str) -> None:
        """A request llhttp cannot parse (bad request line, huge head): problem+json, then close."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        body = problem_bytes(400, "bad_request", "Bad request", "请求无效", msg)
        transport.write(
            STATUS_LINE[400]
            + b"content-type: "
            + PROBLEM
            + b"\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        transport.close()

    def _upgrade(self) -> bytes | None:
        connection: list[bytes] = []
        upgrade = None
        for name, value in self._headers:
            if name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
            elif name == b"upgrade":
                upgrade = value.lower()
        return upgrade if b"upgrade" in connection else None

    def _to_websocket(self) -> None:
        """Hand the connection to uvicorn's WebSocket protocol with the request head it would have read."""
        transport = self.transport
        assert transport is not None
        self.server.connections.discard(self)
        self._disarm()
        head = [self.parser.get_method(), b" ", self._url, b" HTTP/1.1\r\n"]
        for name, value in self._headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        protocol = self.server.websocket_protocol()
        protocol.connection_made(transport)
        protocol.data_received(b"".join(head))
        transport.set_protocol(protocol)

    # ---- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.head_done = False
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True  # the request runs on the app's time now
        self._head_bytes = 0
        self._header_at = None
        parser = self.parser
        if parser.should_upgrade() and self._upgrade() == b"websocket":
            return  # handed over in data_received
        version = parser.get_http_version()
        url = httptools.parse_url(self._url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "server": self.local,
            "client": self.peer,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "headers": self._headers,
            "state": {},
        }
        keep_alive = parser.should_keep_alive()  # HTTP/1.0: only with "Connection: keep-alive"
        assert self.transport is not None
        cycle = Cycle(self, scope, self.transport, self._expect_continue, keep_alive)
        previous, self.cycle = self.cycle, cycle
        if previous is None or previous.response_complete:
            self._start(cycle)
        else:
            self.pause_reading()  # pipelined: answered in order, one at a time
            self.pipeline.append(cycle)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > READ_HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        self._completed_in_feed = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.more_body = False
        cycle.wake()

    # ---- requests --------------------------------------------------------------------------

    def _start(self, cycle: Cycle) -> None:
        self.active = cycle
        task = self.loop.create_task(cycle.run(self.server.app))
        tasks = self.server.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_response_complete(self) -> None:
        self.server.requests += 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.resume_reading()
        if self.pipeline:
            self._start(self.pipeline.popleft())
            return
        if self.cycle is not None and self.cycle.response_complete:
            # Keep-alive: the next request's headers are timed, and an idle connection closes.
            self.head_done = False
            now = self.loop.time()
            self._idle_at = now + self.server.keep_alive_s
            if self._header_at is None:
                self._header_at = now + self.server.header_timeout_s
            self._schedule()


class Cycle:
    """One request and its answer: the ``receive`` and ``send`` the app is called with."""

    __slots__ = (
        "body",
        "chunked",
        "conn",
        "disconnected",
        "expected_length",
        "keep_alive",
        "more_body",
        "on_response",
        "pending_head",
        "response_complete",
        "response_started",
        "scope",
        "signalled",
        "transport",
        "waiter",
        "waiting_for_100",
    )

    def __init__(
        self,
        conn: HttpProtocol,
        scope: dict[str, Any],
        transport: asyncio.Transport,
        expect_continue: bool,
        keep_alive: bool,
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.transport = transport
        self.waiting_for_100 = expect_continue
        self.keep_alive = keep_alive
        self.on_response: Callable[[], None] = conn.on_response_complete
        # Something happened (body, its end, a disconnect, the answer) since ``receive`` last looked:
        # an asyncio.Event's flag, the Event itself made only when ``receive`` has to wait (rarely).
        self.signalled = False
        self.waiter: asyncio.Event | None = None
        self.disconnected = False
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked = False
        self.expected_length = 0
        self.pending_head = b""  # a fixed-length answer's head, written with its first body bytes

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self.transport.close()
            raise
        except Exception:
            log.exception("%s %s: the app raised", self.scope["method"], self.scope["path"])
            if not self.response_started:
                await self.send_500()
            else:
                self.transport.close()  # half an answer: the client sees the connection end
        else:
            if not self.response_started and not self.disconnected:
                log.error("%s %s: the app returned without answering", self.scope["method"], self.scope["path"])
                await self.send_500()
            elif not self.response_complete and not self.disconnected:
                log.error("%s %s: the app returned mid-answer", self.scope["method"], self.scope["path"])
                self.transport.close()
        finally:
            self.on_response = _noop

    async def send_500(self) -> None:
        body = problem_bytes(500, "internal_error", "Internal error", "内部错误", "internal error")
        headers = [(b"content-type", PROBLEM), (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
        await self.send({"type": "http.response.start", "status": 500, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    def wake(self) -> None:
        self.signalled = True
        if self.waiter is not None:
            self.waiter.set()

    async def receive(self) -> Message:
        if self.waiting_for_100 and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100 = False
        if not self.disconnected and not self.response_complete:
            self.conn.resume_reading()
            if not self.signalled:
                if self.waiter is None:
                    self.waiter = asyncio.Event()
                await self.waiter.wait()
            self.signalled = False
            if self.waiter is not None:
                self.waiter.clear()
        if self.disconnected or self.response_complete:
            return _DISCONNECT
        message: Message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    async def send(self, message: Message) -> None:
        if self.conn.write_paused and not self.disconnected:
            await self.conn.drain()  # a client that does not read holds the app here, not in our memory
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self._start_response(message)
        elif not self.response_complete:
            if kind != "http.response.body":
                raise RuntimeError(f"expected 'http.response.body', got {kind!r}")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected {kind!r} after the response was complete")

    def _start_response(self, message: Message) -> None:
        self.response_started = True
        self.waiting_for_100 = False
        status: int = message["status"]
        head = [STATUS_LINE[status], b"date: ", self.conn.server.date(), b"\r\n"]
        length: int | None = None
        close_sent = False
        for raw_name, value in message.get("headers", ()):
            name = _checked_names.get(raw_name)
            if name is None:
                if _HEADER_NAME_BAD.search(raw_name):
                    raise RuntimeError("invalid HTTP header name")
                name = raw_name.lower()
                if len(_checked_names) < _CHECKED_NAMES_MAX:
                    _checked_names[raw_name] = name
            if _HEADER_VALUE_BAD.search(value):
                raise RuntimeError("invalid HTTP header value")
            if name == b"content-length" and length is None and not self.chunked:
                length = int(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.chunked = True
            elif name == b"connection" and b"close" in [t.lower().strip() for t in value.split(b",")]:
                self.keep_alive = False
                close_sent = True
            head += [name, b": ", value, b"\r\n"]
        old = self.scope["http_version"] == "1.0"
        if self.chunked:
            length = None
        elif length is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            if old:
                self.keep_alive = False  # HTTP/1.0 has no chunks: the end of the connection ends the body
                length = -1
            else:
                self.chunked = True  # a stream (SSE): each body message goes out as one chunk, at once
                head.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive and not close_sent:
            head.append(b"connection: close\r\n")
        elif old and self.keep_alive:
            head.append(b"connection: keep-alive\r\n")
        head.append(b"\r\n")
        self.expected_length = length or 0
        if self.chunked or length == -1 or self.scope["method"] == "HEAD":
            self.transport.write(b"".join(head))
        else:
            self.pending_head = b"".join(head)  # one write with the body: one syscall per answer

    def _body(self, body: bytes, more_body: bool) -> None:
        if self.scope["method"] == "HEAD":
            self.expected_length = 0
        elif self.chunked:
            if body:
                out = b"%x\r\n%b\r\n" % (len(body), body)
                self.transport.write(out + b"0\r\n\r\n" if not more_body else out)
            elif not more_body:
                self.transport.write(b"0\r\n\r\n")
        elif self.expected_length < 0:
            if body:
                self.transport.write(body)
        else:
            if len(body) > self.expected_length:
                raise RuntimeError("response longer than its Content-Length")
            self.expected_length -= len(body)
            if self.pending_head:
                head, self.pending_head = self.pending_head, b""
                self.transport.write(head + body if body else head)
            elif body:
                self.transport.write(body)
        if not more_body:
            if self.expected_length > 0:
                raise RuntimeError("response shorter than its Content-Length")
            self.response_complete = True
            self.wake()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


def _addr(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple | list) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None
