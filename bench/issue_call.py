"""Benchmark: durable tickets per second and the daemon's CPU per ticket, against bare SQLite commits.

For each of 1, 8 and 64 concurrent kiosk clients it starts the daemon as a subprocess
(``python -m hallctl.cli -c FILE run``) on a fresh database in a temporary directory and
issues tickets for a fixed time, each request as a kiosk sends it: ``POST /api/v1/tickets``
with a fresh ``Idempotency-Key`` (docs/api.md: one key per visitor action, so the daemon
looks every key up and stores it with the ticket). It prints tickets/s, p50/p99 latency
and the daemon process's CPU time per acknowledged ticket (user + system of all its
threads, from psutil, over the measured window only; the embedded Mosquitto broker is a
child process and is reported on its own). The load generator is this process (one asyncio
loop, raw keep-alive sockets); its cores (CPU seconds per wall second) are printed beside the
daemon's, so a run where the client, not the daemon, was the limit shows as such.

The baseline is bare SQLite (WAL, ``synchronous=FULL``) single-row commits per second on
the same file system: every acknowledged ticket needs a fsynced commit. The machine is
shared and the disk's rate moves a lot between minutes, so the baseline is measured
*interleaved* with the daemon runs (``--rounds`` rounds of: bare, then every daemon level),
and min/median of each are printed with the ratio of the medians.

Two scenarios: ``empty`` starts each level on an empty queue; ``deep`` starts it with
``--deep`` tickets (3,000 by default) already waiting in the category, as in a busy
morning, so any per-issue cost that grows with the queue's length shows up.

The figures of the 64-client ``empty`` level are recorded (bench/figures.py, issue 12
goal 1): CPU ms per durable ticket (goal <= 0.5), tickets/s, and the ratio to bare commits
(goal >= 0.5). After each run every acknowledged ticket must be in the database.

    .venv/bin/python bench/issue_call.py [--seconds 5] [--rounds 3] [--clients 1,8,64]
        [--deep 3000] [--scenarios empty,deep] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl import auth, config, engine  # noqa: E402
from hallctl.store import Store  # noqa: E402
from tests.mqtt.mqtt_helpers import free_port  # noqa: E402

CONFIG = """
[hall]
id = "bench"
name = "基准测试大厅"

[store]
path = "{db}"

[api]
host = "127.0.0.1"
port = {port}

[api.rate_limit]
enabled = false  # one kiosk token drives the whole load: per-token limits would measure 429s

[mqtt]
embedded_port = 0
discovery = false

[[category]]
prefix = "A"
name = "便民服务"
digits = 5

[[window]]
number = 1
categories = ["A"]
"""


def bare_sqlite_rate(directory: Path, seconds: float, rnd: int) -> float:
    """Single-row INSERT + COMMIT per transaction, WAL, synchronous=FULL: commits per second."""
    path = directory / f"bare-{rnd}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def seed_decision(cfg: config.Config, waiting: int) -> engine.Decision:
    """``waiting`` tickets of category A waiting since a few minutes ago, as one decision."""
    now = datetime.now(UTC)
    day = engine.business_day(now, cfg)
    d = engine.Decision(at=now)
    for seq in range(1, waiting + 1):
        at = now - timedelta(minutes=5) + timedelta(milliseconds=seq)
        number = f"A{seq:05d}"
        d.tickets.append(
            engine.Ticket(
                id=f"{day:%Y%m%d}-{number}",
                day=day,
                category="A",
                seq=seq,
                number=number,
                priority="normal",
                channel="api",
                state="waiting",
                issued_at=at,
                sort_at=at,
            )
        )
        d.log.append(
            engine.LogRow("issued", d.tickets[-1].id, None, {"number": number, "priority": "normal", "channel": "api"})
        )
    d.counters[(day, "A")] = waiting
    return d


async def prepare_db(db: Path, cfg_path: Path, waiting: int) -> str:
    """Create the schema, a kiosk token and (for the deep scenario) the waiting tickets."""
    store = Store(str(db))
    await store.open()
    try:
        if waiting:
            await store.apply(seed_decision(config.load(cfg_path), waiting))
        return await auth.create_token(store, "kiosk", label="bench")
    finally:
        await store.close()


def start_daemon(workdir: Path, waiting: int = 0) -> tuple[subprocess.Popen[bytes], str, str]:
    db = workdir / "hallctl.db"
    port = free_port()
    cfg = workdir / "hallctl.toml"
    cfg.write_text(CONFIG.format(db=db, port=port), encoding="utf-8")
    token = asyncio.run(prepare_db(db, cfg, waiting))
    log = (workdir / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hallctl.cli", "-c", str(cfg), "run"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited: {(workdir / 'daemon.log').read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url, token
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("daemon did not become healthy in 30 s")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx's connection pool costs far more CPU per request than the daemon does at 64
    concurrent clients on a small machine, so the benchmark would measure the client;
    one socket per simulated kiosk with hand-written requests keeps the client cheap.
    Every request carries its own ``Idempotency-Key``, as a kiosk's does.
    """

    def __init__(self, host: str, port: int, token: str, name: str) -> None:
        self.host, self.port = host, port
        self.body = json.dumps({"category": "A"}).encode()
        self.head = (
            f"POST /api/v1/tickets HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\nIdempotency-Key: {name}-"
        ).encode()
        self.sent = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def issue(self) -> int:
        assert self.reader is not None and self.writer is not None
        self.sent += 1
        self.writer.write(self.head + b"%d\r\n\r\n" % self.sent + self.body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        if status == 201:
            json.loads(body)  # a complete ticket came back
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


@dataclasses.dataclass
class Run:
    errors: int
    elapsed: float
    latencies: list[float]
    daemon_cpu_s: float  # user + system of the daemon process (all its threads) over the measured window
    broker_cpu_s: float  # the same for its child processes (the embedded Mosquitto)
    client_cpu_s: float = 0.0  # the same for this process, the load generator: it must not be what limits


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def children_cpu(proc: psutil.Process) -> dict[int, float]:
    out: dict[int, float] = {}
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            out[child.pid] = cpu_seconds(child)
    return out


async def run_clients(url: str, token: str, clients: int, seconds: float, pid: int) -> Run:
    latencies: list[float] = []
    errors = 0
    host, port = url.removeprefix("http://").split(":")
    conns = [RawClient(host, int(port), token, f"{os.getpid()}-{i}") for i in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    daemon = psutil.Process(pid)
    stop_at = time.perf_counter() + seconds

    async def one(c: RawClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if await c.issue() == 201:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    cpu0, kids0, own0 = cpu_seconds(daemon), children_cpu(daemon), time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in conns))
    elapsed = time.perf_counter() - start
    cpu1, kids1, own1 = cpu_seconds(daemon), children_cpu(daemon), time.process_time()
    await asyncio.gather(*(c.close() for c in conns))
    broker = sum(v - kids0.get(pid, 0.0) for pid, v in kids1.items())
    return Run(errors, elapsed, latencies, cpu1 - cpu0, broker, own1 - own0)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per concurrency level")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of: bare SQLite, then every daemon level")
    ap.add_argument("--bare-seconds", type=float, default=2.0, help="bare SQLite measuring time per round")
    ap.add_argument("--clients", default="1,8,64", help="comma-separated concurrency levels")
    ap.add_argument("--deep", type=int, default=3000, help="tickets already waiting in the deep scenario")
    ap.add_argument("--scenarios", default="empty,deep", help="comma-separated: empty, deep")
    ap.add_argument("--no-record", action="store_true", help="do not record the figures (bench/figures.py)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(scenarios) - {"empty", "deep"}:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    bares: list[float] = []
    runs: dict[tuple[str, int], list[Run]] = {(s, n): [] for s in scenarios for n in levels}
    acked = stored = 0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hallctl-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        for rnd in range(args.rounds):
            bares.append(bare_sqlite_rate(workdir, args.bare_seconds, rnd))
            for scenario in scenarios:
                waiting = args.deep if scenario == "deep" else 0
                for n in levels:
                    # A fresh daemon and database per level: the levels stay comparable (the queue's
                    # length, not only the concurrency, changes the cost of an issue).
                    level_dir = workdir / f"{rnd}-{scenario}-clients-{n}"
                    level_dir.mkdir()
                    proc, url, token = start_daemon(level_dir, waiting)
                    try:
                        run = asyncio.run(run_clients(url, token, n, args.seconds, proc.pid))
                    finally:
                        stop(proc)
                    runs[(scenario, n)].append(run)
                    # Every acknowledged ticket must be in the database.
                    conn = sqlite3.connect(level_dir / "hallctl.db")
                    stored += conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] - waiting
                    conn.close()
                    acked += len(run.latencies)
    load_after = os.getloadavg()

    bare_med = statistics.median(bares)
    print(
        f"bare SQLite WAL synchronous=FULL single-row commits, {args.rounds} rounds interleaved:"
        f" min {min(bares):,.0f}/s, median {bare_med:,.0f}/s (this machine, this run)"
    )
    print(
        f"{'scenario':>8} {'clients':>7} {'tickets/s min':>13} {'median':>8} {'÷ bare':>7} {'p50 ms':>7}"
        f" {'p99 ms':>7} {'errors':>6} {'CPU ms/ticket':>13} {'broker ms/t':>11} {'daemon cores':>12}"
        f" {'client cores':>12}"
    )
    results = []
    for (scenario, n), rs in runs.items():
        rates = [len(r.latencies) / r.elapsed for r in rs]
        lat = [x for r in rs for x in r.latencies]
        cpu = [r.daemon_cpu_s * 1000 / max(1, len(r.latencies)) for r in rs]
        broker = [r.broker_cpu_s * 1000 / max(1, len(r.latencies)) for r in rs]
        res: dict[str, Any] = {
            "scenario": scenario,
            "clients": n,
            "per_s_min": round(min(rates), 1),
            "per_s_median": round(statistics.median(rates), 1),
            "ratio_to_bare": round(statistics.median(rates) / bare_med, 3),
            "p50_ms": round(figures.percentile(lat, 0.5) * 1000, 2),
            "p99_ms": round(figures.percentile(lat, 0.99) * 1000, 2),
            "errors": sum(r.errors for r in rs),
            "cpu_ms_per_ticket": round(statistics.median(cpu), 3),
            "broker_cpu_ms_per_ticket": round(statistics.median(broker), 3),
            # Cores (CPU seconds per wall second) of the daemon and of the load generator (this process,
            # one asyncio loop): on 2 shared cores a client near 1 core would be what limits.
            "daemon_cores": round(statistics.median(r.daemon_cpu_s / r.elapsed for r in rs), 2),
            "client_cores": round(statistics.median(r.client_cpu_s / r.elapsed for r in rs), 2),
        }
        results.append(res)
        print(
            f"{scenario:>8} {n:>7} {res['per_s_min']:>13,.1f} {res['per_s_median']:>8,.1f} {res['ratio_to_bare']:>7.3f}"
            f" {res['p50_ms']:>7.2f} {res['p99_ms']:>7.2f} {res['errors']:>6} {res['cpu_ms_per_ticket']:>13.3f}"
            f" {res['broker_cpu_ms_per_ticket']:>11.3f} {res['daemon_cores']:>12.2f} {res['client_cores']:>12.2f}"
        )
    load = f"loadavg {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)"
    print(f"acknowledged {acked} tickets; {stored} in the database after shutdown (besides the seeded ones); {load}")
    if args.json:
        print(json.dumps({"bare_commits_per_s": bares, "levels": results, "acked": acked, "stored": stored}))
    headline = next((r for r in results if r["scenario"] == "empty" and r["clients"] == max(levels)), None)
    if headline is not None and not args.no_record:
        detail = (
            f"{headline['clients']} kiosk clients with Idempotency-Key, {args.rounds} rounds of {args.seconds:g} s"
            f" interleaved with bare SQLite (median {bare_med:,.0f} commits/s); load generator in its own process"
            f" used {headline['client_cores']} cores, the daemon {headline['daemon_cores']}; {load}"
        )
        figures.record(
            figures.Figure(
                bench="issue_call",
                name=f"daemon CPU per durable ticket, {headline['clients']} clients (loop + writer)",
                value=float(headline["cpu_ms_per_ticket"]),
                unit="ms",
                goal=0.5,
                compare="<=",
                issue_goal="1",
                detail=detail + f"; broker child {headline['broker_cpu_ms_per_ticket']} ms/ticket (not included)",
            ),
            figures.Figure(
                bench="issue_call",
                name=f"durable tickets/s, {headline['clients']} clients",
                value=float(headline["per_s_median"]),
                unit="1/s",
                goal=2000,
                compare=">=",
                issue_goal="1",
                detail=detail,
            ),
            figures.Figure(
                bench="issue_call",
                name=f"tickets/s ÷ bare SQLite commits/s, {headline['clients']} clients (medians)",
                value=float(headline["ratio_to_bare"]),
                unit="ratio",
                goal=0.5,
                compare=">=",
                issue_goal="1",
                detail=detail,
            ),
        )
    return 0 if stored >= acked else 1


if __name__ == "__main__":
    raise SystemExit(main())
