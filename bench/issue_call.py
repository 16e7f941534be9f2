"""Benchmark: durable tickets issued per second over HTTP, against the physical limit of the design.

For each of 1, 8 and 64 concurrent HTTP clients it starts the daemon as a subprocess
(``python -m hallctl.cli -c FILE run``) on a fresh database in a temporary directory,
issues tickets for a fixed time and prints tickets/s and p50/p99 latency. In the same
run, on the same file system, it measures bare SQLite (WAL, ``synchronous=FULL``)
single-row commits per second: every acknowledged ticket costs at least one such
fsynced commit, so the ratio says how close the daemon gets to the disk's limit.

Two scenarios: ``empty`` starts each level on an empty queue; ``deep`` starts it with
``--deep`` tickets (3,000 by default) already waiting in the category, as in a busy
morning, so any per-issue cost that grows with the queue's length shows up.

    .venv/bin/python bench/issue_call.py [--seconds 5] [--clients 1,8,64] [--deep 3000]
        [--scenarios empty,deep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hallctl import auth, config, engine  # noqa: E402
from hallctl.store import Store  # noqa: E402

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_sqlite_rate(directory: Path, seconds: float) -> float:
    """Single-row INSERT + COMMIT per transaction, WAL, synchronous=FULL: commits per second."""
    path = directory / "bare.db"
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
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        body = json.dumps({"category": "A"}).encode()
        self.request = (
            f"POST /api/v1/tickets HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def issue(self) -> int:
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request)
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


async def run_clients(url: str, token: str, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    errors = 0
    host, port = url.removeprefix("http://").split(":")
    conns = [RawClient(host, int(port), token) for _ in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    stop_at = time.perf_counter() + seconds

    async def one(c: RawClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if await c.issue() == 201:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in conns))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(c.close() for c in conns))
    return errors, elapsed, latencies


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per concurrency level")
    ap.add_argument("--clients", default="1,8,64", help="comma-separated concurrency levels")
    ap.add_argument("--deep", type=int, default=3000, help="tickets already waiting in the deep scenario")
    ap.add_argument("--scenarios", default="empty,deep", help="comma-separated: empty, deep")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(scenarios) - {"empty", "deep"}:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="hallctl-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        bare = bare_sqlite_rate(workdir, min(args.seconds, 3.0))
        results = []
        stored = seeded = 0
        for scenario in scenarios:
            waiting = args.deep if scenario == "deep" else 0
            for n in levels:
                # A fresh daemon and database per level: the levels stay comparable (the queue's
                # length, not only the concurrency, changes the cost of an issue).
                level_dir = workdir / f"{scenario}-clients-{n}"
                level_dir.mkdir()
                proc, url, token = start_daemon(level_dir, waiting)
                try:
                    errors, elapsed, lat = asyncio.run(run_clients(url, token, n, args.seconds))
                finally:
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                rate = len(lat) / elapsed
                results.append(
                    {
                        "scenario": scenario,
                        "waiting_before": waiting,
                        "clients": n,
                        "tickets": len(lat),
                        "errors": errors,
                        "per_s": round(rate, 1),
                        "p50_ms": round(pct(lat, 0.5) * 1000, 2),
                        "p99_ms": round(pct(lat, 0.99) * 1000, 2),
                        "ratio_to_bare": round(rate / bare, 3),
                    }
                )
                # Every acknowledged ticket must be in the database.
                conn = sqlite3.connect(level_dir / "hallctl.db")
                stored += conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
                conn.close()
                seeded += waiting

    print(f"bare SQLite WAL synchronous=FULL single-row commits: {bare:,.0f}/s (this machine, this run)")
    print(
        f"{'scenario':>8} {'waiting':>7} {'clients':>7} {'tickets':>8} {'errors':>6} {'tickets/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'÷ bare':>7}"
    )
    for r in results:
        print(
            f"{r['scenario']:>8} {r['waiting_before']:>7} {r['clients']:>7} {r['tickets']:>8} {r['errors']:>6} "
            f"{r['per_s']:>10,.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['ratio_to_bare']:>7.3f}"
        )
    acked = sum(r["tickets"] for r in results)
    print(f"acknowledged {acked} tickets; {stored - seeded} in the database after shutdown (besides {seeded} seeded)")
    if args.json:
        print(json.dumps({"bare_commits_per_s": round(bare, 1), "levels": results, "stored": stored, "seeded": seeded}))
    return 0 if stored - seeded >= acked else 1


if __name__ == "__main__":
    raise SystemExit(main())
