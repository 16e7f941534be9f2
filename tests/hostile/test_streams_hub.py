"""Hostile: event streams against a real daemon process (issue 10, items 3 and 16).

Many idle streams and a stream that never reads must not hold the hall up: one bus
subscriber fans each event out to bounded per-client queues and drops a client that
falls behind (it reconnects and gets the present). Streams are capped per token and
in total. A revoked token's streams close within seconds, also after a revoke by
another process (``hallctl token revoke``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.core.core_helpers import Daemon
from tests.hostile.stream_clients import SseClient, health, poll, problem_code

IDLE_STREAMS = 300


# A long category name makes every queue_state event large (~60 KB), so that a client that never
# reads fills the kernel's socket buffers (several MB on loopback) after a few dozen tickets.
LONG_NAME = "便民服务" + "。" * 20000


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(
        tmp_path / "d",
        api={"max_streams": 2000, "max_streams_per_token": 1000},
        category=[{"prefix": "A", "name": LONG_NAME, "digits": 5}],
        window=[{"number": 1, "categories": ["A"]}],
    )
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    tokens = await daemon.create_tokens({"admin": ("admin", ()), "display": ("display", ()), "slow": ("display", ())})
    daemon.start()
    async with httpx.AsyncClient(base_url=daemon.url, timeout=20) as c:
        c.headers["X-Test-Admin"] = tokens["admin"]
        c.headers["X-Test-Display"] = tokens["display"]
        c.headers["X-Test-Slow"] = tokens["slow"]
        yield c


def tokens_of(c: httpx.AsyncClient) -> tuple[str, str]:
    return c.headers["X-Test-Admin"], c.headers["X-Test-Display"]


async def issue(c: httpx.AsyncClient, admin: str) -> str:
    resp = await c.post("/api/v1/tickets", json={"category": "A"}, headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 201, resp.text
    number: str = resp.json()["number"]
    return number


async def test_a_stream_that_never_reads_is_dropped_and_the_others_keep_up(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    admin, display = tokens_of(client)
    idle = [await SseClient.open(daemon.port, display) for _ in range(IDLE_STREAMS)]
    for s in idle:
        await s.ready()
    # The slow client has a token of its own: when its stream is dropped, health counts one token less.
    slow = await SseClient.open(daemon.port, client.headers["X-Test-Slow"], rcvbuf=2048)
    await slow.ready()  # then it never reads again
    fast = await SseClient.open(daemon.port, display)
    await fast.ready()
    try:

        async def dropped() -> bool:
            streams = (await health(client)).get("streams", {})
            return bool(streams.get("dropped")) and streams.get("tokens") == 1

        issued: list[str] = []
        started = time.monotonic()
        # Until the daemon says it dropped a stream; bounded (800 tickets are ~48 MB of events, many
        # times what the slow client's socket buffers hold).
        while not await dropped() and len(issued) < 800 and time.monotonic() - started < 60:
            issued += await asyncio.gather(*(issue(client, admin) for _ in range(10)))
        print(f"{len(issued)} tickets until a stream was dropped, {time.monotonic() - started:.1f} s")
        last = max(issued)
        assert await fast.until(f'"number":"{last}"'.encode(), 30), "the reading stream ended"
        # The reading stream got every ticket, none lost.
        assert all(f'"number":"{n}"'.encode() in fast.buf for n in issued)
        # The dropped client gets what was already on its way, then the server closes its stream.
        assert await slow.to_eof(30), "the slow stream was not closed"
        assert f'"number":"{last}"'.encode() not in slow.buf
        # It reconnects and gets the present again.
        again = await SseClient.open(daemon.port, display)
        await again.ready()
        again.close()
    finally:
        for s in (*idle, slow, fast):
            s.close()


async def test_streams_are_capped_per_token_and_in_total(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "d", api={"max_streams": 3, "max_streams_per_token": 2})
    try:
        tokens = await d.create_tokens(
            {"a": ("display", ()), "b": ("display", ()), "c": ("display", ()), "admin": ("admin", ())}
        )
        d.start()
        a1, a2 = [await SseClient.open(d.port, tokens["a"]) for _ in range(2)]
        await a1.ready()
        await a2.ready()
        a3 = await SseClient.open(d.port, tokens["a"])
        assert await a3.head() == 429
        assert problem_code(await a3.body()) == "too_many_streams"
        b1 = await SseClient.open(d.port, tokens["b"])
        await b1.ready()
        c1 = await SseClient.open(d.port, tokens["c"])
        assert await c1.head() == 503
        assert problem_code(await c1.body()) == "streams_full"
        async with connect(f"ws://127.0.0.1:{d.port}/ws?token={tokens['c']}") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # A closed stream frees its slot.
        a1.close()
        async with httpx.AsyncClient(base_url=d.url, timeout=10, headers={"X-Test-Admin": tokens["admin"]}) as c:

            async def freed() -> bool:
                return bool((await health(c))["streams"]["open"] < 3)

            assert await poll(freed, 10)
        c2 = await SseClient.open(d.port, tokens["c"])
        await c2.ready()
        for s in (a2, a3, b1, c1, c2):
            s.close()
    finally:
        d.stop()


async def test_streams_of_a_token_revoked_by_another_process_close_within_5_s(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    _, display = tokens_of(client)
    rows = [r for r in (await list_tokens(daemon)) if r["role"] == "display"]
    assert len(rows) == 2  # "display", then "slow" (unused here)
    sse = await SseClient.open(daemon.port, display)
    await sse.ready()
    async with connect(f"ws://127.0.0.1:{daemon.port}/ws?token={display}") as ws:
        await ws.recv()  # the snapshot has begun
        proc = await asyncio.to_thread(daemon.cli, "token", "revoke", str(min(r["id"] for r in rows)))
        assert proc.returncode == 0, proc.stderr
        revoked_at = time.monotonic()

        async def ws_closed() -> int | None:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(6):
                    while True:
                        await ws.recv()
            return ws.close_code

        sse_done, ws_code = await asyncio.gather(sse.to_eof(6), ws_closed())
        elapsed = time.monotonic() - revoked_at
        assert sse_done, "the SSE stream outlived the revocation"
        assert ws_code == 4401, f"WebSocket close code {ws_code}"
        assert elapsed < 5.5, elapsed
    sse.close()
    again = await SseClient.open(daemon.port, display)  # and the token is refused from now on
    assert await again.head() == 401
    again.close()


async def list_tokens(d: Daemon) -> list[dict[str, Any]]:
    import json

    proc = await asyncio.to_thread(d.cli, "token", "list")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]
