"""What supervision (电子监察) costs the daemon: one check round, and an alert raised, stored and published.

Every ``[supervision] check_interval_s`` (30 s) the alert service looks at every ticket (waits and
services past their limits), every window (paused or unstaffed while its categories are open) and
every sensor; a new problem is then one SQLite write (through the store's writer thread) and one
event. A problem raised again while its alert is unresolved costs no write (the service answers
from its in-memory map of unresolved alerts). This bench runs an in-process hall (no devices, no
MQTT) with many windows and waiting tickets and measures, in process CPU time:

- one check round with nothing new to raise (the steady state), best of several rounds;
- one new alert (raise request → dedup → stored → published), averaged over a batch;
- one duplicate raise (already unresolved: dedup only), averaged over a batch.

Run: .venv/bin/python bench/supervision.py [--windows 40] [--tickets 600] [--alerts 200] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hallctl.daemon
from bench import figures
from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now


async def settle(hall: Hall) -> None:
    for _ in range(3):
        await hall.bus.drain()


async def run(args: argparse.Namespace) -> dict[str, float]:
    hallctl.daemon.component_factories = list  # the core and its HTTP server only (no devices, no MQTT)
    cats = [{"prefix": p, "name": f"业务{p}", "target_wait_minutes": 10} for p in "ABCD"]
    windows = [{"number": n, "categories": ["A", "B", "C", "D"]} for n in range(1, args.windows + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        raw: dict[str, Any] = {
            "hall": {"id": "bench", "name": "测试"},
            "store": {"path": str(Path(tmp) / "hall.db")},
            "api": {"host": "127.0.0.1", "port": 0, "rate_limit": {"enabled": False}},
            "calendar": {"statutory": False},
            "category": cats,
            "window": windows,
            "supervision": {"check_interval_s": 3600},  # the bench drives the rounds itself
        }
        clock = Clock()
        hall = Hall(config.parse(raw), clock=clock, state_dir=Path(tmp))
        await hall.start()
        try:
            svc, sup = hall.service, hall.supervision
            await asyncio.gather(*(svc.issue("ABCD"[i % 4]) for i in range(args.tickets)))
            # Past every limit: the first round raises one alert per category and one per window.
            clock.now += timedelta(minutes=30)
            sup.check()
            clock.now += timedelta(minutes=30)
            sup.check()
            await settle(hall)
            rounds = []
            for _ in range(args.rounds):
                t0 = time.process_time()
                sup.check()
                rounds.append(time.process_time() - t0)
            check_ms = min(rounds) * 1e3

            def request(i: int) -> ev.Alert:
                return ev.Alert(
                    at=clock(), alert="bench", severity="info", message=f"测试{i}", subject=f"s{i}", data={}
                )

            t0 = time.process_time()
            for i in range(args.alerts):
                hall.bus.publish(request(i))
            await settle(hall)
            new_us = (time.process_time() - t0) / args.alerts * 1e6
            stored = len(await hall.store.alerts(kinds=("bench",), limit=100000))
            assert stored == args.alerts, stored
            t0 = time.process_time()
            for i in range(args.alerts):
                hall.bus.publish(request(i))
            await settle(hall)
            dup_us = (time.process_time() - t0) / args.alerts * 1e6
            assert len(await hall.store.alerts(kinds=("bench",), limit=100000)) == args.alerts
        finally:
            await hall.stop()
    return {"check_ms": check_ms, "new_us": new_us, "dup_us": dup_us}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--tickets", type=int, default=600)
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    ratio = r["new_us"] / r["dup_us"] if r["dup_us"] > 0 else float("inf")
    print(f"{args.windows} windows, {args.tickets} waiting tickets; process CPU time (a shared machine: noisy)")
    print(f"  one check round (nothing new), best of {args.rounds}: {r['check_ms']:8.2f} ms")
    print(f"  one new alert, stored and published ({args.alerts}):  {r['new_us']:8.1f} µs")
    print(f"  one duplicate raise, deduplicated ({args.alerts}):     {r['dup_us']:8.1f} µs  (new = {ratio:.1f}× dup)")
    if not args.no_record:
        detail = f"{args.windows} windows, {args.tickets} waiting tickets, in-process hall, process CPU"
        figures.record(
            figures.Figure(
                bench="supervision",
                name="one supervision check round, CPU",
                value=round(r["check_ms"], 2),
                unit="ms",
                goal=30.0,  # 0.1 % of the default 30 s interval
                compare="<=",
                detail=f"{detail}; best of {args.rounds}",
            ),
            figures.Figure(
                bench="supervision",
                name="a new alert stored and published, CPU",
                value=round(r["new_us"], 1),
                unit="µs",
                goal=2000.0,
                compare="<=",
                detail=f"{detail}; mean of {args.alerts}; a duplicate raise {r['dup_us']:.1f} µs",
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
