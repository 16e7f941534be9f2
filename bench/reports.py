"""What a month's report costs: the event-log read of the month and the report computation over it.

The /board page asks for yesterday's report and this month's every five minutes, and the
admin's monthly export reads a whole month, so both are recomputed from the event log each
time (no stored aggregates). This bench writes a month of a busy hall's events (every
working day: ``--tickets`` visits, each issued, called, started, finished and mostly rated;
two clerks per window signing in and out) through the Store's own decision path, then
times, in process CPU time, the month's read (``Store.report_events``) and the
computation (:func:`hallctl.reports.daily.monthly`), and one day's report for comparison.

Run: .venv/bin/python bench/reports.py [--tickets 1500] [--days 22] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import figures
from hallctl import config
from hallctl.engine import Decision, LogRow
from hallctl.reports import daily, source
from hallctl.store import Store

TZ = ZoneInfo("Asia/Shanghai")
WINDOWS = 12


def hall(db: str) -> config.Config:
    return config.parse(
        {
            "hall": {"id": "bench", "name": "测试"},
            "store": {"path": db},
            "calendar": {"statutory": False},
            "category": [
                {"prefix": p, "name": p, "hours": ["mon-fri 09:00-12:00", "mon-fri 13:30-17:00"]} for p in "ABCD"
            ],
            "window": [{"number": n, "categories": ["ABCD"[n % 4]]} for n in range(1, WINDOWS + 1)],
            "staff": [{"id": f"s{n:02d}", "name": f"职员{n}"} for n in range(1, WINDOWS + 1)],
        }
    )


def day_decisions(day: date, tickets: int) -> list[Decision]:
    """One working day: sign-ins, then ``tickets`` visits spread over 09:00-16:30, sign-outs."""
    start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ).astimezone(UTC)
    out: list[Decision] = []
    for n in range(1, WINDOWS + 1):
        out.append(
            Decision(at=start - timedelta(minutes=10), log=[LogRow("signed_in", None, n, {"staff": f"s{n:02d}"})])
        )
    step = 7.5 * 3600 / tickets
    for i in range(tickets):
        cat = "ABCD"[i % 4]
        window = (i % WINDOWS) + 1
        tid = f"{day:%Y%m%d}-{cat}{i:04d}"
        t0 = start + timedelta(seconds=i * step)
        rows = [
            (t0, LogRow("issued", tid, None, {"number": f"{cat}{i:04d}", "priority": "normal", "channel": "kiosk"})),
            (t0 + timedelta(minutes=8), LogRow("called", tid, window, {"number": f"{cat}{i:04d}", "recall": 0})),
            (t0 + timedelta(minutes=9), LogRow("serving", tid, window, {"number": f"{cat}{i:04d}"})),
            (t0 + timedelta(minutes=17), LogRow("finished", tid, window, {"number": "", "service_s": 480.0})),
        ]
        if i % 5:
            rows.append((t0 + timedelta(minutes=17, seconds=20), LogRow("evaluated", tid, window, {"level": 5})))
        out += [Decision(at=at, log=[row]) for at, row in rows]
    end = start + timedelta(hours=8)
    out += [Decision(at=end, log=[LogRow("signed_out", None, n, {"staff": f"s{n:02d}"})]) for n in range(1, 13)]
    return out


async def fill(store: Store, days: list[date], tickets: int) -> int:
    rows = 0
    for d in days:
        decisions = sorted(day_decisions(d, tickets), key=lambda x: x.at)
        futures = [store.submit_decision(x) for x in decisions]
        await asyncio.gather(*futures)
        rows += len(decisions)
    return rows


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = hall(str(Path(tmp) / "bench.db"))
        store = Store(cfg.store.path)
        await store.open()
        try:
            month = "2026-11"
            first, last = daily.month_days(month)
            days = [d for d in (first + timedelta(days=i) for i in range(30)) if d.weekday() < 5][: args.days]
            t = time.monotonic()
            rows = await fill(store, days, args.tickets)
            print(f"wrote {rows} event rows for {len(days)} days in {time.monotonic() - t:.1f} s (wall)")
            now = datetime(2026, 12, 1, 9, 0, tzinfo=TZ)

            read_s, compute_s, day_s = [], [], []
            for _ in range(args.rounds):
                c0 = time.process_time()
                recs = await source.records(store, cfg, first, last)
                c1 = time.process_time()
                rep = daily.monthly(recs, cfg, month, now)
                c2 = time.process_time()
                one = await source.daily_report(store, cfg, days[-1], now)
                c3 = time.process_time()
                read_s.append(c1 - c0)
                compute_s.append(c2 - c1)
                day_s.append(c3 - c2)
            assert rep["total"]["served"] == args.tickets * len(days), rep["total"]
            assert one["total"]["served"] == args.tickets
        finally:
            await store.close()
    read, compute, one_day = min(read_s), min(compute_s), min(day_s)
    print(f"month of {len(recs)} records, best of {args.rounds}, process CPU time (shared machine: noisy)")
    print(f"  read (Store.report_events + records) : {read:6.2f} s")
    print(f"  compute (reports.daily.monthly)      : {compute:6.2f} s")
    print(f"  one day's report, read + compute     : {one_day:6.3f} s  (month/day {(read + compute) / one_day:.0f}×)")
    if not args.no_record:
        detail = (
            f"{len(days)} days × {args.tickets} visits, {len(recs)} records, {WINDOWS} windows; best of {args.rounds}"
        )
        figures.record(
            figures.Figure(
                bench="reports",
                name="monthly report, read + compute, CPU",
                value=round(read + compute, 2),
                unit="s",
                goal=10.0,
                compare="<=",
                detail=f"{detail}; read {read:.2f} s, compute {compute:.2f} s",
            ),
            figures.Figure(
                bench="reports",
                name="daily report, read + compute, CPU",
                value=round(one_day, 3),
                unit="s",
                goal=1.0,
                compare="<=",
                detail=detail,
            ),
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=1500, help="visits per working day")
    ap.add_argument("--days", type=int, default=21, help="working days in the month (at most 21 in 2026-11)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
