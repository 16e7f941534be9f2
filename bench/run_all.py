"""``make bench``: every bench script in turn, then one table of all figures beside the goals.

Each script records its figures in ``BENCH_JSON`` (:mod:`bench.figures`); this runner starts
from an empty file, runs the scripts as separate processes (so one's imports, threads and
leftovers cannot colour another's figures) and prints the table at the end. A script that
fails is reported and the others still run; the exit status says whether all ran.

    .venv/bin/python bench/run_all.py [--only issue_call,mqtt_latency] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402

# The goals of issue 12 ("Performance"): each must have a figure in the table.
ISSUE_GOALS = {
    "1": "CPU per durable ticket, tickets/s vs bare commits",
    "2": "sensors: 500 readings/s, CPU, silent loss",
    "3": "call -> every sink (MQTT, SSE, LED) p99",
    "4": "footprint: idle RSS, cold start, kill -9 -> serving with a year of history",
    "5": "hall load: CPU share of one core",
}

# (script, arguments for a full run, arguments for --quick)
SCRIPTS: list[tuple[str, list[str], list[str]]] = [
    ("issue_call.py", [], ["--seconds", "2", "--rounds", "2", "--clients", "1,64"]),
    ("issue_threads.py", [], ["--seconds", "2", "--rounds", "1"]),
    ("mqtt_latency.py", [], ["--n", "100"]),
    ("devices.py", [], ["5"]),
    ("streams.py", [], ["--streams", "200", "--rounds", "20"]),
    ("hall_day.py", [], ["--seconds", "20", "--warmup", "5"]),
    ("soak.py", [], ["--quick"]),
    ("footprint.py", [], ["--quick"]),
    ("climate_day.py", [], []),
    ("sensors.py", ["--rounds", "4"], ["--seconds", "4", "--rounds", "1"]),  # 2 rounds: the latency ratio swung 1.0-1.6
    ("calendar_open.py", [], ["--n", "50000"]),
    ("reports.py", [], ["--tickets", "300", "--days", "5", "--rounds", "1"]),
    ("supervision.py", [], ["--tickets", "200", "--alerts", "100"]),
    ("city_ingest.py", [], ["--towns", "29", "--live-seconds", "3"]),
    ("admin_edit.py", [], ["--n", "20"]),
    ("voice_render.py", [], ["--clips", "30", "--rounds", "2"]),
    ("city_reports.py", [], ["--towns", "29", "--days", "1", "--rounds", "1"]),
    ("http_wire.py", [], ["--seconds", "2", "--rounds", "3"]),
    ("mqtt_publish_cpu.py", [], ["--n", "5000", "--rounds", "3"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated script names (without .py)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (figures are noisier)")
    args = ap.parse_args()
    only = {s.strip().removesuffix(".py") for s in args.only.split(",") if s.strip()}
    path = figures.results_path()
    if path.exists() and not only:  # --only re-measures some scripts; the others' figures stay
        path.unlink()
    env = dict(os.environ, BENCH_JSON=str(path), PYTHONPATH=str(REPO))
    failed: list[str] = []
    took: list[str] = []
    t_all = time.monotonic()
    for script, full, quick in SCRIPTS:
        if only and script.removesuffix(".py") not in only:
            continue
        print(f"\n=== bench/{script} ===", flush=True)
        t = time.monotonic()
        rc = subprocess.run([sys.executable, str(REPO / "bench" / script), *(quick if args.quick else full)], env=env)
        took.append(f"{script.removesuffix('.py')} {time.monotonic() - t:.0f} s")
        if rc.returncode != 0:
            failed.append(f"{script} (exit {rc.returncode})")
    found = figures.load(path)
    print(f"\n=== all figures ({path}) ===")
    print(figures.table(found))
    if not only:
        goals = {f.issue_goal for f in found}
        for goal, what in ISSUE_GOALS.items():
            if goal not in goals:
                print(f"issue 12 goal {goal} ({what}): NO FIGURE recorded")
    print(f"machine: {figures.machine()}")
    print(f"{'quick' if args.quick else 'full'} run: {time.monotonic() - t_all:.0f} s ({', '.join(took)})")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
