"""The hall's own HTTP/1.1 server (hallctl/http/wire.py), spoken to over raw sockets.

Against the API port of an in-process hall (the real app, the real protocol, loopback):
what HTTP clients rely on (pipelining, chunked bodies, ``Expect: 100-continue``, HEAD,
HTTP/1.0, keep-alive and ``Connection: close``), streams that end when their client goes
or stops reading, WebSocket, and a stop that ends everything within its bound. A few
cases an app must never reach in the hall (returning without an answer, raising half-way)
run against a toy app on the same server class.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets

from hallctl.http.limits import Message, Receive, Scope, Send
from hallctl.http.server import bind_listener
from tests.core.conftest import HallFactory
from tests.core.core_helpers import LiveHall

WAIT = 10.0  # seconds: the bound on every wait for bytes, a close or a count


# ---- a raw HTTP/1.1 client ---------------------------------------------------------------------


class Raw:
    """One TCP connection, read as HTTP responses (or its end), each read bounded by WAIT."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, rcvbuf: int | None = None) -> Raw:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str]]:
        async with asyncio.timeout(WAIT):
            raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                assert name.lower() not in headers, f"header {name} twice"
                headers[name.lower()] = value.strip()
        return status, headers

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = await self.head()
        if head_only or status in (100, 204, 304):
            return status, headers, b""
        async with asyncio.timeout(WAIT):
            if "content-length" in headers:
                return status, headers, await self.reader.readexactly(int(headers["content-length"]))
            assert headers.get("transfer-encoding") == "chunked", headers
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, headers, body
                body += chunk[:-2]

    async def closed_by_server(self) -> bool:
        """True when the server ends the connection within WAIT (anything still unread is discarded)."""
        try:
            async with asyncio.timeout(WAIT):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request(method: str, path: str, token: str | None = None, body: bytes | None = None, **extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: hall"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


ISSUE = json.dumps({"category": "A"}).encode()


async def health(live: LiveHall) -> dict[str, Any]:
    r = await live.client.get("/api/v1/health", headers=live.auth("admin"))
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def until(what: str, check: Callable[[], Awaitable[bool]], deadline_s: float = WAIT) -> None:
    end = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < end, f"not within {deadline_s} s: {what}"
        await asyncio.sleep(0.05)  # bounded poll of an observable condition


@pytest.fixture
async def port(live: LiveHall) -> int:
    p = live.hall.api.port
    assert p is not None
    return p


# ---- HTTP/1.1 as clients use it --------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        await c.send(
            request("GET", "/api/v1/health")
            + request("POST", "/api/v1/tickets", live.tokens["kiosk"], ISSUE)
            + request("GET", "/api/v1/no-such-route", live.tokens["admin"])
            + request("POST", "/api/v1/tickets", live.tokens["kiosk"], ISSUE)
        )
        answers = [await c.response() for _ in range(4)]
        assert [a[0] for a in answers] == [200, 201, 404, 201]
        first, second = json.loads(answers[1][2]), json.loads(answers[3][2])
        assert first["number"] < second["number"], (first, second)  # issued in the order asked
        assert json.loads(answers[0][2])["status"] in ("ok", "degraded")
    finally:
        await c.close()


async def test_chunked_request_body(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        head = request("POST", "/api/v1/tickets", live.tokens["kiosk"], Transfer_Encoding="chunked")
        await c.send(head.replace(b"\r\n\r\n", b"\r\nContent-Type: application/json\r\n\r\n"))
        await c.send(b"%x\r\n%b\r\n" % (len(ISSUE[:5]), ISSUE[:5]))  # the body in two chunks, sent apart
        await c.send(b"%x\r\n%b\r\n0\r\n\r\n" % (len(ISSUE[5:]), ISSUE[5:]))
        status, _headers, body = await c.response()
        assert status == 201, body
        assert json.loads(body)["category"] == "A"
    finally:
        await c.close()


async def test_expect_100_continue_is_answered_before_the_body(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        head, _, body = request(
            "POST", "/api/v1/tickets", live.tokens["kiosk"], ISSUE, Expect="100-continue"
        ).partition(b"\r\n\r\n")
        await c.send(head + b"\r\n\r\n")
        status, _ = await c.head()  # the client holds its body until told to go on
        assert status == 100
        await c.send(body)
        status, _headers, answer = await c.response()
        assert status == 201, answer
    finally:
        await c.close()


async def test_head_answers_headers_without_a_body(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        await c.send(request("GET", "/static/common.css"))
        status, headers, body = await c.response()
        assert status == 200 and len(body) == int(headers["content-length"]) > 0
        await c.send(request("HEAD", "/static/common.css") + request("GET", "/api/v1/health"))
        status, head_headers, _ = await c.response(head_only=True)
        assert status == 200 and head_headers["content-length"] == headers["content-length"]
        # No body followed the HEAD answer: the next bytes are the next answer's status line.
        status, _, body = await c.response()
        assert status == 200 and json.loads(body)["status"] in ("ok", "degraded")
    finally:
        await c.close()


async def test_http_1_0_closes_unless_keep_alive_is_asked(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        await c.send(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
        status, _, body = await c.response()
        assert status == 200 and json.loads(body)["status"]
        assert await c.closed_by_server()
    finally:
        await c.close()
    c = await Raw.open(port)
    try:
        for _ in range(2):
            await c.send(b"GET /api/v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = await c.response()
            assert status == 200 and headers.get("connection") == "keep-alive", headers
    finally:
        await c.close()


async def test_connection_close_from_the_client_or_the_app(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        await c.send(request("GET", "/api/v1/health", Connection="close"))
        status, headers, _ = await c.response()
        assert status == 200 and headers["connection"] == "close"
        assert await c.closed_by_server()
    finally:
        await c.close()
    c = await Raw.open(port)
    try:
        # A body over the limit: the app answers 413 with "connection: close", and the server closes.
        huge = b'{"category": "A", "x": "' + b"x" * (live.hall.cfg.api.max_body_bytes + 10) + b'"}'
        await c.send(request("POST", "/api/v1/tickets", live.tokens["kiosk"], huge))
        status, headers, _ = await c.response()
        assert status == 413 and headers["connection"] == "close"
        assert await c.closed_by_server()
    finally:
        await c.close()


async def test_answers_carry_a_date_and_no_server_name(live: LiveHall, port: int) -> None:
    c = await Raw.open(port)
    try:
        await c.send(request("GET", "/api/v1/health"))
        _status, headers, _ = await c.response()
        assert headers["date"].endswith(" GMT") and "server" not in headers, headers
    finally:
        await c.close()


async def test_an_idle_keep_alive_connection_is_closed(hall_factory: HallFactory) -> None:
    live = await hall_factory(api={"keep_alive_s": 1})
    assert live.hall.api.port is not None
    c = await Raw.open(live.hall.api.port)
    try:
        await c.send(request("GET", "/api/v1/health"))
        assert (await c.response())[0] == 200
        await c.send(request("GET", "/api/v1/health"))  # kept alive between requests that follow closely
        assert (await c.response())[0] == 200
        t0 = time.monotonic()
        assert await c.closed_by_server()
        assert time.monotonic() - t0 >= 0.5  # closed by the idle timer, not at once
    finally:
        await c.close()


async def test_a_busy_keep_alive_connection_stays_and_a_half_sent_next_request_times_out(
    hall_factory: HallFactory,
) -> None:
    """Requests closer together than keep_alive_s keep the connection past it; half a request line does not."""
    live = await hall_factory(api={"keep_alive_s": 1, "header_timeout_s": 1.0})
    assert live.hall.api.port is not None
    c = await Raw.open(live.hall.api.port)
    try:
        t0 = time.monotonic()
        for _ in range(8):  # 8 requests 0.4 s apart: 3 s on one connection, each gap under keep_alive_s
            await c.send(request("GET", "/api/v1/health"))
            assert (await c.response())[0] == 200
            await asyncio.sleep(0.4)  # pacing the client, not waiting for the server
        assert time.monotonic() - t0 > 2 * live.hall.cfg.api.keep_alive_s
        await c.send(b"GET /api/v1/hea")  # bytes arrive (the idle timer stops), the headers never do
        t1 = time.monotonic()
        assert await c.closed_by_server()
        assert time.monotonic() - t1 >= 0.5
    finally:
        await c.close()


# ---- streams ---------------------------------------------------------------------------------


async def open_sse(port: int, token: str, rcvbuf: int | None = None) -> Raw:
    c = await Raw.open(port, rcvbuf)
    await c.send(request("GET", "/api/v1/events", token))
    status, headers = await c.head()
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), headers
    assert headers["transfer-encoding"] == "chunked"
    return c


async def test_a_client_that_hangs_up_mid_stream_frees_it(live: LiveHall, port: int) -> None:
    c = await open_sse(port, live.tokens["display"])
    try:
        async with asyncio.timeout(WAIT):
            await c.reader.readuntil(b"event: ready")  # each chunk is flushed as it is sent
        assert (await health(live))["streams"]["open"] == 1
    finally:
        await c.close()

    async def freed() -> bool:
        h = await health(live)
        return bool(h["streams"]["open"] == 0 and h["http"]["in_flight"] <= 1)  # 1: this health request

    await until("the stream's slot and request freed", freed)


async def test_websocket_clients_still_work(live: LiveHall, port: int) -> None:
    async with (
        asyncio.timeout(WAIT),
        websockets.connect(f"ws://127.0.0.1:{port}/ws?token={live.tokens['display']}") as ws,
    ):
        first = json.loads(await ws.recv())
        assert "event" in first
        h = await health(live)
        assert h["http"]["websockets"] == 1 and h["streams"]["open"] == 1


async def test_stop_ends_streams_idle_and_busy_connections_within_its_bound(live: LiveHall, port: int) -> None:
    idle = await Raw.open(port)
    await idle.send(request("GET", "/api/v1/health"))
    assert (await idle.response())[0] == 200
    sse = await open_sse(port, live.tokens["display"])
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={live.tokens['display']}")
    try:
        t0 = time.monotonic()
        await live.hall.stop()
        took = time.monotonic() - t0
        assert await idle.closed_by_server() and await sse.closed_by_server()
        async with asyncio.timeout(WAIT):
            await ws.wait_closed()
        assert took < 5, took  # within the stop's bound: nothing was left to time out
    finally:
        await idle.close()
        await sse.close()
        await ws.close()


# ---- what the hall's app never does, on a toy app ----------------------------------------------


@pytest.fixture
async def toy() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Serve a toy app on a loopback port; with ``out``, the server is appended to it (for its stats)."""
    from hallctl.http.wire import WireServer

    servers: list[WireServer] = []

    async def serve(app: Callable[[Scope, Receive, Send], Awaitable[None]], out: list[WireServer] | None = None) -> int:
        server = WireServer(app, header_timeout_s=5, keep_alive_s=5, max_connections=16)
        sock = bind_listener("127.0.0.1", 0)
        await server.start(sock)
        servers.append(server)
        if out is not None:
            out.append(server)
        return int(sock.getsockname()[1])

    yield serve
    for s in servers:
        await s.stop(grace_s=1)


async def test_the_scope_is_what_uvicorn_built(toy: Any) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))
        msg: Message = await receive()
        body = msg["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    port = await toy(app)
    c = await Raw.open(port)
    try:
        await c.send(request("POST", "/a%20b/%E5%8F%B7?x=1&y=%20", body=b"hello", X_Mixed_Case="V"))
        status, _headers, body = await c.response()
        assert status == 200 and body == b"hello"
    finally:
        await c.close()
    (scope,) = seen
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1" and scope["scheme"] == "http" and scope["root_path"] == ""
    assert scope["method"] == "POST" and scope["path"] == "/a b/号" and scope["raw_path"] == b"/a%20b/%E5%8F%B7"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["server"] == ("127.0.0.1", port) and scope["client"][0] == "127.0.0.1"
    assert (b"x-mixed-case", b"V") in scope["headers"] and (b"host", b"hall") in scope["headers"]


async def test_an_app_that_does_not_answer_gets_500_and_one_that_breaks_mid_answer_closes(toy: Any) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    async def breaks(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("half-way")

    c = await Raw.open(await toy(silent))
    try:
        await c.send(request("GET", "/"))
        status, headers, body = await c.response()
        assert status == 500 and headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "internal_error"
        assert await c.closed_by_server()
    finally:
        await c.close()
    c = await Raw.open(await toy(breaks))
    try:
        await c.send(request("GET", "/"))
        status, headers = await c.head()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert await c.closed_by_server()  # no final chunk: the client knows the answer is cut short
    finally:
        await c.close()


async def test_a_client_that_does_not_read_holds_the_app_not_the_servers_memory(toy: Any) -> None:
    """pause_writing honoured: ``send()`` waits for the client, so what the server buffers stays bounded.

    The app streams 64 KiB chunks as fast as ``send()`` lets it (at most 64 MiB); the client
    reads nothing. Without back-pressure the whole 64 MiB would pile up in the transport.
    """
    from hallctl.http.wire import WireServer

    chunk = b"x" * 65536
    sent = 0
    servers: list[WireServer] = []

    async def firehose(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for _ in range(1024):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        await send({"type": "http.response.body", "body": b""})

    port = await toy(firehose, servers)
    c = await Raw.open(port, rcvbuf=4096)
    try:
        await c.send(request("GET", "/"))
        steady: list[int] = []

        async def stalled() -> bool:
            steady.append(sent)
            return len(steady) >= 10 and steady[-10] == sent  # no progress for 10 polls (0.5 s)

        await until("the app held by send()", stalled)
        stats = servers[0].stats()
        assert stats["writes_paused"] == 1, stats
        # The transport's high-water mark (64 KiB by default) plus the chunk that crossed it.
        assert stats["write_buffer_max_bytes"] <= 64 * 1024 + len(chunk) + 65536, stats
        assert sent < 64 * 1024 * 1024 // 2, sent  # the kernel's buffers took a few MiB; the rest waited
    finally:
        await c.close()


async def test_receive_waits_for_the_body_and_every_waiting_receive_learns_the_client_went(toy: Any) -> None:
    """A part of the body reaches the ``receive()`` that waits for it; two ``receive()`` waiting at
    once (a stream listening for the disconnect while the app reads too) both get ``http.disconnect``."""
    got: list[Any] = []
    waiting = asyncio.Event()
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append((await receive())["body"])
        both = asyncio.gather(receive(), receive())
        waiting.set()
        got.extend(m["type"] for m in await both)
        done.set()

    c = await Raw.open(await toy(app))
    try:
        await c.send(b"POST / HTTP/1.1\r\nHost: hall\r\nTransfer-Encoding: chunked\r\n\r\n")
        await asyncio.sleep(0.05)  # the app's first receive() waits for the body (else it finds it: the same)
        await c.send(b"5\r\nhello\r\n")
        async with asyncio.timeout(WAIT):
            await waiting.wait()
        await asyncio.sleep(0.05)  # both receive() wait now
    finally:
        await c.close()
    async with asyncio.timeout(WAIT):
        await done.wait()
    assert got == [b"hello", "http.disconnect", "http.disconnect"]
