"""Event streams for screens: Server-Sent Events and WebSocket, fed by the bus.

Each client gets its own bounded queue; the present (retained state) is sent first,
then every event as it happens; old calls are never replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi import Request

from hallctl import events as ev
from hallctl.context import HallContext

# Jobs for the hall's own devices, not for screens: a print job carries the ticket's QR token.
PRIVATE_EVENTS: tuple[type[ev.Event], ...] = (ev.PrintRequested,)


def offer(queue: asyncio.Queue[ev.Event], e: ev.Event) -> None:
    if isinstance(e, PRIVATE_EVENTS):
        return
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(e)


async def next_event(queue: asyncio.Queue[ev.Event], closing: asyncio.Event, timeout: float | None) -> ev.Event | None:
    """The next event, or None once the server is stopping; TimeoutError after ``timeout``.

    A stream that only waited on its queue would outlive the server's stop (uvicorn
    waits for it, then leaves the connection open), so clients would never notice
    a restart.
    """
    if closing.is_set():
        return None
    get = asyncio.ensure_future(queue.get())
    stop = asyncio.ensure_future(closing.wait())
    try:
        done, _ = await asyncio.wait((get, stop), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in (get, stop):
            if not f.done():
                f.cancel()
    if get in done:
        return get.result()
    if stop in done:
        return None
    raise TimeoutError


def sse_frame(e: ev.Event) -> bytes:
    data = json.dumps(e.to_dict(), ensure_ascii=False)
    return f"event: {e.wire_name}\ndata: {data}\n\n".encode()


async def sse_stream(ctx: HallContext, request: Request) -> AsyncIterator[bytes]:
    """The present first (retained state), then every event as it happens; old calls are never replayed."""
    queue: asyncio.Queue[ev.Event] = asyncio.Queue(maxsize=1000)
    sub = ctx.bus.subscribe(f"sse.{id(queue)}", lambda e: offer(queue, e))
    try:
        yield b"retry: 2000\n\n"
        for e in ctx.snapshot():
            yield sse_frame(e)
        yield b"event: ready\ndata: {}\n\n"
        closing: asyncio.Event = request.app.state.closing
        while True:
            try:
                nxt = await next_event(queue, closing, 15)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if nxt is None or await request.is_disconnected():
                return
            yield sse_frame(nxt)
    finally:
        await ctx.bus.unsubscribe(sub)
