"""What keeps one client from stopping the hall's HTTP API.

- :class:`BodyLimit`: request bodies are limited while they stream, before parsing and
  before the token check (413 ``body_too_large``); a route that needs more says so.
- :class:`CatchAll`: an unexpected exception still answers problem+json 500
  ``internal_error`` (logged with its traceback), never plain text.
- :data:`MAX_HEAD_BYTES`, with the header-read timeout and the connection cap, is applied by
  the server's protocol (:class:`hallctl.http.wire.HttpProtocol`): a head larger than this
  answers 400; a connection that has not sent its request line and headers within
  ``header_timeout_s`` (also after a keep-alive response) is closed; past
  ``max_connections`` the oldest connection still waiting for headers is closed to make
  room, else the new one is refused.
- :class:`AcceptErrorFilter`: ``socket.accept() out of system resource`` (EMFILE) is
  logged at most once per interval, without a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PROBLEM = b"application/problem+json"


def problem_bytes(status: int, code: str, title: str, detail: str, detail_en: str | None = None) -> bytes:
    body: dict[str, Any] = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body["code"] = code
    if detail_en and detail_en != detail:
        body["detail_en"] = detail_en
    return json.dumps(body, ensure_ascii=False).encode()


async def send_problem(
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    detail_en: str | None = None,
    close: bool = False,
) -> None:
    body = problem_bytes(status, code, title, detail, detail_en)
    headers = [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


_NO_BODY = -1  # BodyLimit.check_head: no Content-Length and not chunked
_TOO_LARGE = -2  # BodyLimit._verdict: a Content-Length over the limit
_BAD_LENGTH = -3  # BodyLimit._verdict: a Content-Length that is not a number


class BodyLimit:
    """Refuse request bodies over the limit while they stream; a body within it is read once and replayed.

    ``allowances``: (method, path regex, bytes) for the routes that need more than ``default``
    (none today). The body is read here, at most ``limit`` bytes of it, before the app (and so
    the token check) runs; a Content-Length over the limit is refused without reading a byte.
    """

    def __init__(self, app: ASGIApp, default: int, allowances: Iterable[tuple[str, str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.allowances = [(m.upper(), re.compile(p), n) for m, p, n in allowances]

    def limit_for(self, method: str, path: str) -> int:
        if not self.allowances:
            return self.default
        for m, pattern, n in self.allowances:
            if m == method and pattern.fullmatch(path):
                return n
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = await self.check_head(scope, send)
        if limit is None:
            return
        if limit == _NO_BODY:
            await self.app(scope, receive, send)  # no body (GET, streams): pass through untouched
            return
        try:
            body = await self._read(receive, limit)
        except _TooLarge:
            await self._refuse(send, limit)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The request's body within the limit, or None when the request was answered (413, 400)."""
        limit = self._verdict(scope)
        if limit < 0:
            if limit == _NO_BODY:
                return b""
            await self._refuse_head(scope, send, limit)
            return None
        try:
            return await self._read(receive, limit)
        except _TooLarge:
            await self._refuse(send, limit)
            return None

    async def check_head(self, scope: Scope, send: Send) -> int | None:
        """The limit to read the body with, ``_NO_BODY`` when there is none, None when refused by its headers."""
        limit = self._verdict(scope)
        if limit < _NO_BODY:
            await self._refuse_head(scope, send, limit)
            return None
        return limit

    def _verdict(self, scope: Scope) -> int:
        """:meth:`check_head` without the answer, so a body within the limit costs no coroutine to learn so."""
        limit = self.limit_for(scope["method"], scope["path"])
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None:
            declared = int(length) if length.strip().isdigit() else -1
            if declared > limit:
                return _TOO_LARGE
            if declared < 0:
                return _BAD_LENGTH
        elif not chunked:
            return _NO_BODY
        return limit

    async def _refuse_head(self, scope: Scope, send: Send, verdict: int) -> None:
        if verdict == _TOO_LARGE:
            await self._refuse(send, self.limit_for(scope["method"], scope["path"]))
        else:
            await send_problem(send, 400, "bad_request", "Bad request", "Content-Length 无效", "bad Content-Length")

    @staticmethod
    async def _read(receive: Receive, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            parts.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(parts)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        await send_problem(
            send,
            413,
            "body_too_large",
            "Payload too large",
            f"请求体超过{limit}字节",
            f"request body exceeds {limit} bytes",
            close=True,
        )


class CatchAll:
    """Any exception that no handler answered: log it with its traceback and answer problem+json 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            log.exception("%s %s: unexpected error", scope.get("method"), scope.get("path"))
            if started:
                raise  # the answer is under way: the connection is closed instead
            await send_problem(send, 500, "internal_error", "Internal error", "内部错误", "internal error")


MAX_HEAD_BYTES = 16 * 1024  # a request line and headers larger than this are refused (h11's default limit)


class AcceptErrorFilter(logging.Filter):
    """At most one ``socket.accept() out of system resource`` line per ``interval_s``, without a traceback."""

    MARK = "socket.accept() out of system resource"

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.MARK):
            return True
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            self.suppressed += 1
            return False
        self._last = now
        record.msg = f"{self.MARK} (out of file descriptors?); {self.suppressed} more suppressed since the last line"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        self.suppressed = 0
        return True
