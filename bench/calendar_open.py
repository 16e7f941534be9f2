"""The cost of the hall calendar on the issue path: ``is_open`` with the calendar against weekly hours alone.

Every ticket issue (and every queue-state publish) asks whether its category is open. Since
the hall calendar (statutory holidays, 调休, ``[calendar]`` overrides) that answer first looks
the date up in ``chinese-calendar``; before, it only matched the weekly spans. This bench
times both on the same category and the same instants, in process CPU time, and records the
calendar's cost as a ratio to the weekly-spans check and in microseconds per call. (The
calendar's intervals are cached per day: without the cache a call cost about 16 µs, 25× the
weekly check, measured on this machine while it was shared.)

Run: .venv/bin/python bench/calendar_open.py [--n 200000] [--no-record]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import figures
from hallctl import config
from hallctl.engine import calendar

TZ = ZoneInfo("Asia/Shanghai")


def weekly_open(cat: config.CategoryConfig, spans: tuple[config.OpeningSpan, ...], now: datetime) -> bool:
    """What ``is_open`` did before the calendar: the weekly spans only."""
    local = now.astimezone(TZ)
    return any(span.contains(local.weekday(), local.time()) for span in spans)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    cfg = config.parse(
        {
            "hall": {"id": "bench", "name": "测试"},
            "category": [{"prefix": "A", "name": "便民", "hours": ["mon-fri 09:00-12:00", "mon-fri 13:30-17:00"]}],
            "calendar": {"closed_days": ["2026-12-31"]},
        }
    )
    cat = cfg.category[0]
    spans = cat.spans
    start = datetime(2026, 9, 14, 8, 0, tzinfo=TZ)
    # 7-minute steps through 100 days (mid-September to late December 2026: National Day, 调休 days).
    instants = [start + timedelta(minutes=(7 * i) % (100 * 24 * 60)) for i in range(args.n)]

    def run(fn: object) -> float:
        t0 = time.process_time()
        for t in instants:
            fn(t)  # type: ignore[operator]
        return time.process_time() - t0

    weekly = min(run(lambda t: weekly_open(cat, spans, t)) for _ in range(3))
    cal = min(run(lambda t: calendar.is_open(cfg, cat, t)) for _ in range(3))
    per_call_us = cal / args.n * 1e6
    ratio = cal / weekly if weekly > 0 else float("inf")
    print(f"{args.n} calls, best of 3, process CPU time (a shared machine: noisy)")
    print(f"  weekly spans only : {weekly * 1e6 / args.n:7.2f} µs/call")
    print(f"  hall calendar     : {per_call_us:7.2f} µs/call  ({ratio:.1f}× the weekly check)")
    if not args.no_record:
        figures.record(
            figures.Figure(
                bench="calendar_open",
                name="is_open with the hall calendar, CPU per call",
                value=round(per_call_us, 2),
                unit="µs",
                goal=50.0,
                compare="<=",
                detail=f"{args.n} instants in 2026, best of 3, process CPU; "
                f"weekly-spans check {weekly * 1e6 / args.n:.2f} µs",
            ),
            figures.Figure(
                bench="calendar_open",
                name="is_open: calendar / weekly spans, CPU ratio",
                value=round(ratio, 2),
                unit="×",
                detail="same instants, same run",
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
