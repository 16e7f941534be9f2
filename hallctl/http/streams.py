"""Event streams for screens: Server-Sent Events and WebSocket, fed by one bus subscriber.

The :class:`StreamHub` is the only bus subscriber for all streams. Each event is
serialised once (the SSE frame's bytes and the WebSocket's JSON text, built on
first use) and offered to every client's bounded queue without awaiting. A client
whose queue is full is dropped: its connection is closed, it reconnects and gets
the present again (retained state); it never holds anyone up.

Who sees what: a swipe's ``card_read`` carries an ``offer`` that issues a ticket
in the card holder's name, so it goes with its offer only to streams of tokens
that act for that kiosk (and admin); other streams get it without the offer. A
``kiosk_notice`` (which can name a ticket) goes only to that kiosk's streams and
admin. Print jobs never leave the hall's own devices.

Streams are capped per token and in total (``[api] max_streams_per_token``,
``[api] max_streams``). Every stream's token is checked again every
:data:`REVALIDATE_S` seconds through the :class:`~hallctl.auth.Authenticator`, so a
revoked token's streams close within a few seconds, also after a revoke by
another process (``hallctl token revoke``; the Authenticator notices its marker file).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Literal

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hallctl import events as ev
from hallctl import jsontext
from hallctl.auth import Principal
from hallctl.bus import Subscription
from hallctl.context import HallContext
from hallctl.errors import HallctlError, Unauthorized
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Jobs for the hall's own devices, not for screens: a print job carries the ticket's QR token.
PRIVATE_EVENTS: tuple[type[ev.Event], ...] = (ev.PrintRequested,)
CLIENT_QUEUE = 256  # frames a client may lag behind before it is dropped
REVALIDATE_S = 2.0  # how often every stream's token is checked again
KEEPALIVE_S = 15.0
BATCH = 64  # frames of a burst (an issue publishes several events at once) written to a client in one go


class TooManyStreams(HallctlError):
    http_status = 429
    title = "Too many streams"


class StreamsFull(HallctlError):
    http_status = 503
    title = "Service unavailable"


@dataclasses.dataclass(slots=True)
class Frame:
    """One event, serialised at most once per form.

    ``text`` is the payload's JSON; for a frame made from an event it is the event's
    shared wire JSON (:meth:`~hallctl.events.Event.wire_json`, also MQTT's payload), so
    the streams add only the SSE and WebSocket framing around it.
    """

    name: str
    payload: dict[str, object]
    text: str | None = None
    _sse: bytes | None = None
    _ws: str | None = None

    @property
    def body(self) -> str:
        if self.text is None:
            self.text = jsontext.dumps(self.payload)
        return self.text

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = f"event: {self.name}\ndata: {self.body}\n\n".encode()
        return self._sse

    @property
    def ws(self) -> str:
        if self._ws is None:
            self._ws = f'{{"event":{json.dumps(self.name)},"data":{self.body}}}'
        return self._ws

    @classmethod
    def of(cls, e: ev.Event) -> Frame:
        return cls(e.wire_name, e.wire_dict(), e.wire_json())


class Client:
    """One open stream: its token, its principal and its bounded queue of frames (``None``: close)."""

    def __init__(self, principal: Principal, token: str, kind: Literal["sse", "ws"]) -> None:
        self.principal = principal
        self.token = token
        self.kind = kind
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        self.reason: str | None = None

    def offer(self, frame: Frame) -> bool:
        """Queue a frame without waiting; False when the queue is full (the client is too slow)."""
        if self.reason is not None:
            return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def end(self, reason: str) -> None:
        """Close this stream: drop what it has not read and wake it with the end marker."""
        if self.reason is not None:
            return
        self.reason = reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self, timeout: float | None) -> Frame | None:
        """The next frame, ``None`` once the stream must end; TimeoutError after ``timeout``."""
        if timeout is None:
            return await self.queue.get()
        async with asyncio.timeout(timeout):
            return await self.queue.get()

    def ready(self, limit: int = BATCH) -> list[Frame | None]:
        """Frames already queued (up to ``limit``), without waiting: written together, one write for a burst."""
        out: list[Frame | None] = []
        while len(out) < limit and not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


def may_see_kiosk(p: Principal, kiosk: str) -> bool:
    return p.role == "admin" or p.acts_for_kiosk(kiosk)


class StreamHub:
    """One bus subscriber for every SSE and WebSocket client; caps, routing, revocation."""

    def __init__(
        self, ctx: HallContext, closing: asyncio.Event, max_streams: int = 1000, max_per_token: int = 200
    ) -> None:
        self.ctx = ctx
        self.closing = closing
        self.max_streams = max_streams
        self.max_per_token = max_per_token
        self.clients: set[Client] = set()
        self.per_token: collections.Counter[int | str] = collections.Counter()
        self.dropped = 0
        self._sub: Subscription | None = None
        self._watch: asyncio.Task[None] | None = None

    # ---- clients ------------------------------------------------------------------------

    def _key(self, c: Client) -> int | str:
        return c.principal.token_id if c.principal.token_id is not None else c.token

    def register(self, principal: Principal, token: str, kind: Literal["sse", "ws"]) -> Client:
        """A new stream, or :class:`TooManyStreams` (429) / :class:`StreamsFull` (503)."""
        if self.closing.is_set():
            raise StreamsFull("shutting_down", "服务正在重启", "the service is restarting")
        c = Client(principal, token, kind)
        key = self._key(c)
        if self.per_token[key] >= self.max_per_token:
            raise TooManyStreams(
                "too_many_streams",
                "此令牌打开的事件流过多",
                f"this token has {self.max_per_token} open streams already",
            )
        if len(self.clients) >= self.max_streams:
            raise StreamsFull("streams_full", "事件流已满", "the stream limit is reached; retry later")
        self._ensure_running()
        self.clients.add(c)
        self.per_token[key] += 1
        return c

    def unregister(self, c: Client) -> None:
        if c in self.clients:
            self.clients.discard(c)
            key = self._key(c)
            self.per_token[key] -= 1
            if self.per_token[key] <= 0:
                del self.per_token[key]

    def stats(self) -> dict[str, int]:
        return {"open": len(self.clients), "tokens": len(self.per_token), "dropped": self.dropped}

    # ---- fan-out ------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._sub is None:
            self._sub = self.ctx.bus.subscribe("streams", self.publish)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._revalidate(), name="hallctl.streams.revalidate")

    def publish(self, e: ev.Event) -> None:
        """Offer one event to every stream that may see it; serialised once per form."""
        if isinstance(e, PRIVATE_EVENTS) or not self.clients or (isinstance(e, ev.Alert) and e.id is None):
            return  # an Alert without an id is a raise request; the stored alert follows with its id
        frame = Frame.of(e)
        route: Callable[[Client], Frame | None] = lambda c: frame  # noqa: E731
        if isinstance(e, ev.CardRead):
            public = Frame(frame.name, {k: v for k, v in frame.payload.items() if k != "offer"})
            kiosk = e.kiosk
            route = lambda c: frame if may_see_kiosk(c.principal, kiosk) else public  # noqa: E731
        elif isinstance(e, ev.KioskNotice):
            kiosk = e.kiosk
            route = lambda c: frame if may_see_kiosk(c.principal, kiosk) else None  # noqa: E731
        slow: list[Client] = []
        for c in self.clients:
            f = route(c)
            if f is not None and not c.offer(f):
                slow.append(c)
        for c in slow:
            self.dropped += 1
            log.info("stream dropped: %s client too slow (token %s)", c.kind, c.principal.token_id)
            self._end(c, "dropped")

    async def _revalidate(self) -> None:
        """Close streams whose token was revoked, and all of them when the server stops."""
        while self.clients:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REVALIDATE_S):
                    await self.closing.wait()
            if self.closing.is_set():
                for c in list(self.clients):
                    self._end(c, "closing")
                return
            checked: dict[str, bool] = {}
            for c in list(self.clients):
                if c.token not in checked:
                    try:
                        await self.ctx.auth.authenticate(c.token)
                        checked[c.token] = True
                    except Unauthorized:
                        checked[c.token] = False
                    except HallctlError as exc:  # the store is unavailable: keep the streams, check again
                        log.warning("stream token check failed: %s", exc.code)
                        checked[c.token] = True
                if not checked[c.token]:
                    self._end(c, "revoked")

    def _end(self, c: Client, reason: str) -> None:
        """Close a stream now; its slot is free at once, even while its connection is still stuck."""
        c.end(reason)
        self.unregister(c)

    async def close(self) -> None:
        for c in list(self.clients):
            self._end(c, "closing")
        await cancel_and_wait(self._watch)
        if self._sub is not None:
            await self.ctx.bus.unsubscribe(self._sub)
            self._sub = None


class StreamResponse(StreamingResponse):
    """An SSE response that frees its stream's slot however it ends (even before its body starts)."""

    def __init__(self, hub: StreamHub, client: Client, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.hub = hub
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.unregister(self.client)


def snapshot_frames(ctx: HallContext, p: Principal) -> list[Frame]:
    """The present (retained state) as frames; card reads and kiosk notices are never retained."""
    return [Frame.of(e) for e in ctx.snapshot() if not isinstance(e, (*PRIVATE_EVENTS, ev.CardRead, ev.KioskNotice))]


async def sse_stream(ctx: HallContext, hub: StreamHub, client: Client, request: Request) -> AsyncIterator[bytes]:
    """The present first (retained state), then every event as it happens; old calls are never replayed."""
    try:
        yield b"retry: 2000\n\n"
        for f in snapshot_frames(ctx, client.principal):
            yield f.sse
        yield b"event: ready\ndata: {}\n\n"
        while True:
            try:
                nxt = await client.next(KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if nxt is None:
                return
            burst = [nxt, *client.ready()]
            data = b"".join(f.sse for f in burst if f is not None)
            if data:
                yield data
            if burst[-1] is None:
                return
    finally:
        hub.unregister(client)
