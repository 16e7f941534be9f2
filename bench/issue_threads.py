"""Benchmark: where a durable ticket's daemon CPU goes, per thread (issue 12 goal 1).

``bench/issue_call.py`` measures the daemon's CPU per ticket over all its threads; the
limit at 64 clients is the event-loop thread alone (one core at most), so this script
splits the same load by thread. It starts the daemon exactly as ``issue_call`` does
(fresh database, embedded Mosquitto, one kiosk token), drives ``--clients`` kiosk clients
with fresh ``Idempotency-Key``s for ``--seconds``, and reads each thread's user + system
ticks from ``/proc/PID/task/TID/stat`` before and after. The event loop is the main thread
(TID = PID); the SQLite writer is the busiest other thread. Printed per round: tickets/s,
CPU ms per ticket of the loop thread, of the busiest other thread and of the whole
process, and the loop thread's cores (CPU seconds per wall second; near 1 it is the limit).
The median over rounds of the loop thread's ms/ticket is recorded (no goal of its own:
the issue's goal is the whole process's, recorded by ``issue_call``).

Linux only (``/proc``). Timing on a shared machine is noisy: compare figures taken in the
same run, or alternate versions.

    .venv/bin/python bench/issue_threads.py [--seconds 5] [--rounds 3] [--clients 64] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from bench.issue_call import run_clients, start_daemon, stop  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def thread_ticks(pid: int) -> dict[int, int]:
    """user + system clock ticks of each thread of ``pid``."""
    out: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between listing and reading
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return out


async def measured(url: str, token: str, clients: int, seconds: float, pid: int) -> tuple[int, float, dict[int, int]]:
    before = thread_ticks(pid)
    run = await run_clients(url, token, clients, seconds, pid)
    after = thread_ticks(pid)
    delta = {tid: ticks - before.get(tid, 0) for tid, ticks in after.items()}
    return len(run.latencies), run.elapsed, delta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--no-record", action="store_true", help="do not record the figure (bench/figures.py)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    loop_ms: list[float] = []
    print(f"{'round':>5} {'tickets/s':>9} {'loop ms/t':>9} {'other ms/t':>10} {'all ms/t':>8} {'loop cores':>10}")
    with tempfile.TemporaryDirectory(prefix="hallctl-threads-", dir=os.environ.get("BENCH_DIR")) as tmp:
        for rnd in range(args.rounds):
            workdir = Path(tmp) / f"round-{rnd}"
            workdir.mkdir()
            proc, url, token = start_daemon(workdir)
            try:
                n, elapsed, delta = asyncio.run(measured(url, token, args.clients, args.seconds, proc.pid))
            finally:
                stop(proc)
            per = 1000 / TICK / max(1, n)
            loop = delta.pop(proc.pid, 0)
            other = max(delta.values(), default=0)
            total = loop + sum(delta.values())
            loop_ms.append(loop * per)
            print(
                f"{rnd:>5} {n / elapsed:>9,.0f} {loop * per:>9.3f} {other * per:>10.3f} {total * per:>8.3f}"
                f" {loop / TICK / elapsed:>10.2f}"
            )
    load_after = os.getloadavg()
    load = f"loadavg {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)"
    print(f"event-loop thread, median of {args.rounds} rounds: {statistics.median(loop_ms):.3f} ms/ticket; {load}")
    if not args.no_record:
        figures.record(
            figures.Figure(
                bench="issue_threads",
                name=f"event-loop thread CPU per durable ticket, {args.clients} clients",
                value=round(statistics.median(loop_ms), 3),
                unit="ms",
                issue_goal="1",
                detail=f"/proc per-thread ticks, {args.rounds} rounds of {args.seconds:g} s; {load}",
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
