"""Benchmark: the event loop's CPU per MQTT event publish and its PUBACK (issue 12 goal 1).

The bridge's client (:class:`hallctl.mqtt.pipeline.PipelinedClient`) against a real
Mosquitto on loopback, with the socket work of :mod:`hallctl.mqtt.fastpath` (``fast``)
and without it (``paho``: aiomqtt's and paho's own reading and writing), alternated in
one run so both see the same machine. Each round publishes ``--n`` QoS 1 events the
way the bridge does under load: bursts of ``--burst`` ``publish_nowait`` calls (a group
commit's tickets) while fewer than ``--window`` wait for their PUBACK (the bridge's
``MAX_PENDING``, 1000: paho sends 20 at a time and queues the rest), each reported
through ``on_acked``. The figure is the loop thread's CPU time (``time.thread_time``;
the client runs in this process's main thread, Mosquitto in its own process) per event,
median over rounds, and the ratio fast / paho. One subscriber on the topic, as the
hall's screens and Home Assistant are (``mosquitto_sub``, another process). MQTT 5 by
default (``--protocol 3.1.1`` for the other); no TLS.

Timing on a shared machine is noisy: the ratio of the two paths measured in the same
run is the figure to compare.

    .venv/bin/python bench/mqtt_publish_cpu.py [--n 20000] [--rounds 5] [--burst 8] [--window 1000] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl.mqtt.pipeline import PipelinedClient  # noqa: E402
from tests.mqtt.mqtt_helpers import Mosquitto, tool  # noqa: E402

TOPIC = "bench/hall/event/ticket_issued"

PAYLOAD = '{"event":"ticket_issued","ticket":{"number":"A042","category":"A","state":"waiting"},"ahead":7}'


async def one_round(port: int, protocol: aiomqtt.ProtocolVersion, fast: bool, n: int, burst: int, window: int) -> float:
    """Loop-thread CPU seconds per event for ``n`` events (connect and subscribe not counted)."""
    acked = 0
    room = asyncio.Event()

    def on_acked(mid: int) -> None:
        nonlocal acked
        acked += 1
        room.set()

    async with PipelinedClient("127.0.0.1", port, protocol=protocol, on_acked=on_acked, fast=fast) as client:
        sent = 0
        cpu = time.thread_time()
        deadline = time.monotonic() + 120
        while acked < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{acked} of {n} PUBACKs in 120 s")
            while sent < n and sent - acked < window:
                for _ in range(min(burst, n - sent)):
                    client.publish_nowait(TOPIC, PAYLOAD, 1, False)
                    sent += 1
                await asyncio.sleep(0)  # the burst's flush and other tasks run, as between group commits
            room.clear()
            if acked < n:
                await room.wait()
        cpu = time.thread_time() - cpu
    return cpu / n


async def measure(args: argparse.Namespace, port: int) -> dict[bool, list[float]]:
    protocol = aiomqtt.ProtocolVersion.V311 if args.protocol == "3.1.1" else aiomqtt.ProtocolVersion.V5
    results: dict[bool, list[float]] = {True: [], False: []}
    await one_round(port, protocol, True, min(2000, args.n), args.burst, args.window)  # warm-up
    print(f"MQTT {args.protocol}, {args.n} events per round, bursts of {args.burst}, window {args.window}")
    print("round   paho µs/event   fast µs/event   ratio")
    for r in range(args.rounds):
        for fast in (False, True) if r % 2 == 0 else (True, False):
            results[fast].append(await one_round(port, protocol, fast, args.n, args.burst, args.window))
        slow_us, fast_us = results[False][-1] * 1e6, results[True][-1] * 1e6
        print(f"{r:5d}   {slow_us:13.1f}   {fast_us:13.1f}   {fast_us / slow_us:5.2f}")
    return results


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hallctl-bench-pubcpu-") as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        # The subscriber is another process, so only the publisher's work is on this thread.
        sub = subprocess.Popen(
            [tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-t", TOPIC, "-q", "0"],
            stdout=subprocess.DEVNULL,
        )
        try:
            results = asyncio.run(measure(args, broker.port))
        finally:
            sub.terminate()
            sub.wait(5)
            broker.stop()
    slow = statistics.median(results[False]) * 1e6
    fast = statistics.median(results[True]) * 1e6
    ratios = [f / s for f, s in zip(results[True], results[False], strict=True)]
    ratio = statistics.median(ratios)
    load = os.getloadavg()[0]
    print(f"median: paho {slow:.1f} µs/event, fast {fast:.1f} µs/event, ratio {ratio:.2f}; loadavg {load:.2f}")
    if not args.no_record:
        detail = (
            f"MQTT {args.protocol}, {args.rounds} alternated rounds of {args.n} QoS 1 events (bursts of "
            f"{args.burst}, window {args.window}) against Mosquitto on loopback; loop-thread CPU "
            f"(thread_time) per publish + PUBACK: paho path {slow:.1f} µs, fast path {fast:.1f} µs; loadavg {load:.2f}"
        )
        figures.record(
            figures.Figure(
                bench="mqtt_publish_cpu",
                name="event publish loop CPU, fast / paho",
                value=round(ratio, 3),
                unit="ratio",
                goal=0.5,
                compare="<=",
                issue_goal="1",
                detail=detail,
            )
        )
        figures.record(
            figures.Figure(
                bench="mqtt_publish_cpu",
                name="event publish loop CPU (fast path)",
                value=round(fast, 1),
                unit="µs/event",
                issue_goal="1",
                detail=detail,
            )
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="events per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, each path once per round, alternated")
    ap.add_argument("--burst", type=int, default=8, help="publishes per burst (tickets of one group commit)")
    ap.add_argument("--window", type=int, default=1000, help="events waiting for their PUBACK at most")
    ap.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
    ap.add_argument("--no-record", action="store_true", help="do not record the figures (bench/figures.py)")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
