"""Benchmark: issue+call latency with many idle event-stream clients, as a ratio to none.

Starts the daemon as a subprocess (``python -m hallctl.cli -c FILE run``), measures the
median and p95 of one issue (``POST /tickets``) plus one call (``POST /windows/1/call-next``)
with no stream open, then with ``--streams`` SSE clients connected (raw asyncio sockets that
read everything, like screens; ``--no-read``: they never read), and prints both and their ratio. Issue 10 reported 45×
(26 ms → 1.2 s) with 1,000 clients before the streams shared one bus subscriber.

    .venv/bin/python bench/streams.py [--streams 500] [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from tests.core.core_helpers import Daemon  # noqa: E402
from tests.hostile.stream_clients import SseClient  # noqa: E402


async def drain(s: SseClient) -> None:
    """Read like a screen does, forgetting what was read."""
    while await s.reader.read(65536):
        pass


async def rounds(c: httpx.AsyncClient, admin: str, window: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r1 = await c.post("/api/v1/tickets", json={"category": "A"}, headers={"Authorization": f"Bearer {admin}"})
        r2 = await c.post("/api/v1/windows/1/call-next", headers={"Authorization": f"Bearer {window}"})
        out.append(time.perf_counter() - start)
        assert r1.status_code == 201 and r2.status_code == 200, (r1.text, r2.text)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.95)]


def summary(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:7.1f} ms   p95 {p95(xs) * 1000:7.1f} ms"


async def main(streams: int, n: int, read: bool) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < streams + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, streams + 200), hard))
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(Path(tmp) / "d", api={"max_streams": streams + 10, "max_streams_per_token": streams + 10})
        tokens = await d.create_tokens({"admin": ("admin", ()), "display": ("display", ()), "w1": ("window", (1,))})
        d.start()
        try:
            async with httpx.AsyncClient(base_url=d.url, timeout=60) as c:
                await rounds(c, tokens["admin"], tokens["w1"], 5)  # warm up
                base = await rounds(c, tokens["admin"], tokens["w1"], n)
                clients = [await SseClient.open(d.port, tokens["display"]) for _ in range(streams)]
                for s in clients:
                    await s.ready(60)
                readers = [asyncio.create_task(drain(s)) for s in clients] if read else []
                loaded = await rounds(c, tokens["admin"], tokens["w1"], n)
                for t in readers:
                    t.cancel()
                for s in clients:
                    s.close()
        finally:
            d.stop()
    print(f"issue+call, no streams:       {summary(base)}")
    print(f"issue+call, {streams:4d} SSE streams: {summary(loaded)}")
    ratio = statistics.median(loaded) / statistics.median(base)
    print(f"ratio of medians: {ratio:.2f}x")
    how = f"{n} rounds each, {streams} SSE clients {'reading' if read else 'never reading'}; daemon as a subprocess"
    figures.record(
        figures.Figure(
            "streams",
            "issue+call median, no streams",
            round(statistics.median(base) * 1000, 2),
            "ms",
            detail=f"{how}; p95 {p95(base) * 1000:.1f} ms",
        ),
        figures.Figure(
            "streams",
            f"issue+call median, {streams} SSE streams",
            round(statistics.median(loaded) * 1000, 2),
            "ms",
            detail=f"{how}; p95 {p95(loaded) * 1000:.1f} ms",
        ),
        # Issue 10 (45x with 1,000 clients before the streams shared one subscriber); no numeric goal.
        figures.Figure("streams", "issue+call with streams / without (medians)", round(ratio, 2), "ratio", detail=how),
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--no-read", action="store_true", help="the clients never read (the kernel buffers the events)")
    a = ap.parse_args()
    asyncio.run(main(a.streams, a.rounds, not a.no_read))
