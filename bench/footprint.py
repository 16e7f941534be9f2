"""Issue 12 goal 4, footprint: idle RSS, cold start and kill -9 recovery with a year of history.

Measured against the daemon as a separate process (``python -m hallctl.cli -c FILE run``):

* **idle RSS** (``VmRSS`` of ``/proc/PID/status``) after it serves and has settled, for a
  plain hall config (3 categories, 3 windows, one kiosk with an ID reader and a printer on
  serial paths that do not exist here, so both are offline; MQTT to a Mosquitto started
  here; nothing simulated) and for ``hallctl demo``. Beside them the floor: the RSS of
  ``python -c pass`` and of ``python -c "import fastapi, pydantic, aiomqtt, uvloop, httptools"``
  (the libraries a plain hall imports).
* **cold start**: from spawning the process to health 200 *and* one ticket acknowledged,
  on a database with a year of history (250 working days x 1,500 tickets with their
  event-log rows and evaluations, holders kept only for the retention period) and 30,000
  tickets waiting today. The process's own CPU time at that moment is printed beside the
  wall time (the machine is shared; CPU time moves less).
* **kill -9 -> serving**: the same database, 4 clients issuing; ``kill -9``, restart, time
  until health 200 and one ticket acknowledged again.

Several rounds; min and median printed and recorded (bench/figures.py, issue_goal "4").
The year is generated once per run with the Store's typed methods (one Decision per day),
then copied for each round.

Run: .venv/bin/python bench/footprint.py [--rounds 3] [--days 250] [--per-day 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench import figures  # noqa: E402
from hallctl import auth, engine  # noqa: E402
from hallctl.engine import Decision, Evaluation, Holder, Ticket  # noqa: E402
from hallctl.engine.model import LogRow  # noqa: E402
from hallctl.store import Store  # noqa: E402
from tests.core.core_helpers import config_dict, free_port, make_config, to_toml  # noqa: E402
from tests.mqtt.mqtt_helpers import Mosquitto  # noqa: E402

BENCH = "footprint"
CATEGORIES = ("A", "B", "C")
DEADLINE_S = 60.0


def plain_config(db: Path, mqtt_url: str, port: int) -> dict[str, Any]:
    """A production-like hall: kiosk reader + printer on absent serial paths, external MQTT, no simulation."""
    return config_dict(
        store={"path": str(db)},
        api={"port": port},
        mqtt={"url": mqtt_url, "discovery": False},
        kiosk=[{"id": "k1", "categories": list(CATEGORIES), "reader": "k1-idr", "printer": "k1-prn"}],
        device=[
            {"id": "k1-idr", "kind": "idcard", "port": "/dev/hallctl-bench-absent/k1-idr", "baudrate": 115200},
            {"id": "k1-prn", "kind": "printer", "port": "/dev/hallctl-bench-absent/k1-prn", "baudrate": 115200},
        ],
    )


# ---- a year of history -------------------------------------------------------------------


def _ticket(day: date, cat: str, seq: int, at: datetime, **kw: Any) -> Ticket:
    number = f"{cat}{seq:03d}"
    return Ticket(
        id=f"{day:%Y%m%d}-{number}",
        day=day,
        category=cat,
        seq=seq,
        number=number,
        priority="normal",
        channel="kiosk",
        state=kw.pop("state", "done"),
        issued_at=at,
        sort_at=at,
        kiosk="k1",
        **kw,
    )


def _history_day(day: date, per_day: int, keep_holders: bool) -> Decision:
    """One working day: every ticket issued, called, served, finished and (mostly) evaluated."""
    opening = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    d = Decision(at=opening + timedelta(hours=9))
    counters: dict[str, int] = {}
    for i in range(per_day):
        cat = CATEGORIES[i % len(CATEGORIES)]
        seq = counters[cat] = counters.get(cat, 0) + 1
        issued = opening + timedelta(seconds=20 * i)
        called = issued + timedelta(minutes=12)
        window = 1 + i % 3
        t = _ticket(
            day,
            cat,
            seq,
            issued,
            called_at=called,
            first_called_at=called,
            serving_at=called + timedelta(seconds=40),
            finished_at=called + timedelta(minutes=8),
            window=window,
            staff="0231",
            holder_masked="李*" if keep_holders else None,
        )
        d.tickets.append(t)
        n = {"number": t.number}
        d.log += [
            LogRow("issued", t.id, None, {**n, "priority": "normal", "channel": "kiosk"}),
            LogRow("called", t.id, window, {**n, "recall": False}),
            LogRow("serving", t.id, window, n),
            LogRow("finished", t.id, window, {**n, "service_s": 480}),
            LogRow("evaluation_requested", t.id, window, n),
        ]
        if i % 5:  # four in five rate their service
            d.evaluations.append(Evaluation(t.id, 5 - i % 3, window, "0231", "pad", called + timedelta(minutes=9)))
            d.log.append(LogRow("evaluated", t.id, window, {"level": 5 - i % 3, "channel": "pad"}))
        if keep_holders and i % 2:
            d.holders.append((t.id, Holder(name="李明", id_number=f"11010519491231{i % 10000:04d}")))
    d.counters = {(day, c): n for c, n in counters.items()}
    return d


def _today(day: date, waiting: int, now: datetime) -> Decision:
    d = Decision(at=now)
    counters: dict[str, int] = {}
    start = now - timedelta(hours=2)
    for i in range(waiting):
        cat = CATEGORIES[i % len(CATEGORIES)]
        seq = counters[cat] = counters.get(cat, 0) + 1
        t = _ticket(day, cat, seq, start + timedelta(milliseconds=200 * i), state="waiting")
        d.tickets.append(t)
        d.log.append(LogRow("issued", t.id, None, {"number": t.number, "priority": "normal", "channel": "kiosk"}))
    d.counters = {(day, c): n for c, n in counters.items()}
    return d


async def build_year(db: Path, days: int, per_day: int, waiting: int) -> dict[str, str]:
    """The database a hall has after a year: ``days`` working days of history and ``waiting`` today."""
    cfg = make_config(store={"path": str(db)})
    now = datetime.now(UTC)
    today = engine.business_day(now, cfg)
    store = Store(str(db))
    await store.open()
    try:
        day, done = today - timedelta(days=1), 0
        history: list[date] = []
        while done < days:
            if day.weekday() < 5:
                history.append(day)
                done += 1
            day -= timedelta(days=1)
        retention = cfg.privacy.retention_days
        for day in reversed(history):
            await store.apply(_history_day(day, per_day, keep_holders=(today - day).days <= retention))
        await store.apply(_today(today, waiting, now))
        tokens = {
            "kiosk": await auth.create_token(store, "kiosk", ()),
            "admin": await auth.create_token(store, "admin", ()),
        }
        await store.checkpoint()
    finally:
        await store.close()
    return tokens


# ---- processes ------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_rss(code: str) -> int:
    """VmRSS (KiB) of a bare interpreter that ran ``code``, read by itself at the end."""
    probe = code + "\nimport re\nprint(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return int(out.stdout.strip().splitlines()[-1])


class Proc:
    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as f:
            self.p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def serving(proc: Proc, url: str, token: str | None, deadline_s: float = DEADLINE_S) -> float:
    """Poll until health 200 (and, with ``token``, one ticket acknowledged); returns the monotonic time."""
    end = time.monotonic() + deadline_s
    with httpx.Client(base_url=url, timeout=5) as c:
        while time.monotonic() < end:
            if proc.p.poll() is not None:
                raise RuntimeError(f"daemon exited {proc.p.returncode}: {proc.log.read_text()[-3000:]}")
            try:
                if c.get("/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.005)  # bounded readiness poll of an external process
        else:
            raise RuntimeError("not healthy in time")
        if token is not None:
            r = c.post("/api/v1/tickets", json={"category": "A"}, headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 201:
                raise RuntimeError(f"issue failed: {r.status_code} {r.text}")
    return time.monotonic()


def run_daemon(cfg_file: Path, log: Path) -> Proc:
    return Proc([sys.executable, "-m", "hallctl.cli", "-c", str(cfg_file), "run"], log)


def settle_rss(pid: int, seconds: float) -> int:
    """RSS after ``seconds`` of idling (the lowest of a few readings at the end)."""
    time.sleep(seconds)  # the bench lets the daemon settle; not a synchronisation
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        time.sleep(0.1)
    return min(samples)


def measure_rss(work: Path, mqtt_url: str, settle: float) -> tuple[int, int]:
    db = work / "rss" / "hallctl.db"
    db.parent.mkdir(parents=True)
    port = free_port()
    cfg_file = work / "rss" / "hallctl.toml"
    cfg_file.write_text(to_toml(plain_config(db, mqtt_url, port)), encoding="utf-8")
    p = run_daemon(cfg_file, work / "rss" / "daemon.log")
    try:
        serving(p, f"http://127.0.0.1:{port}", None)
        plain = settle_rss(p.p.pid, settle)
    finally:
        p.stop()
    dport = free_port()
    demo = Proc(
        [sys.executable, "-m", "hallctl.cli", "demo", "--data", str(work / "demo"), "--port", str(dport)],
        work / "demo.log",
    )
    try:
        serving(demo, f"http://127.0.0.1:{dport}", None)
        demo_rss = settle_rss(demo.p.pid, settle)
    finally:
        demo.stop()
    return plain, demo_rss


def cold_start(work: Path, year: Path, tokens: dict[str, str], mqtt_url: str, rnd: int) -> tuple[float, float]:
    d = work / f"cold{rnd}"
    d.mkdir()
    for f in year.parent.iterdir():
        shutil.copy2(f, d / f.name)
    port = free_port()
    cfg_file = d / "hallctl.toml"
    cfg_file.write_text(to_toml(plain_config(d / year.name, mqtt_url, port)), encoding="utf-8")
    t0 = time.monotonic()
    p = run_daemon(cfg_file, d / "daemon.log")
    try:
        t1 = serving(p, f"http://127.0.0.1:{port}", tokens["kiosk"])
        return t1 - t0, cpu_s(p.p.pid)
    finally:
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


def kill9(work: Path, year: Path, tokens: dict[str, str], mqtt_url: str, rnd: int) -> tuple[float, float]:
    d = work / f"kill{rnd}"
    d.mkdir()
    for f in year.parent.iterdir():
        shutil.copy2(f, d / f.name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg_file = d / "hallctl.toml"
    cfg_file.write_text(to_toml(plain_config(d / year.name, mqtt_url, port)), encoding="utf-8")
    p = run_daemon(cfg_file, d / "daemon.log")
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=url, timeout=5) as c:
            for _ in range(100_000):
                if stop.is_set():
                    return
                try:
                    c.post(
                        "/api/v1/tickets",
                        json={"category": "B"},
                        headers={"Authorization": f"Bearer {tokens['kiosk']}"},
                    )
                except httpx.TransportError:
                    return

    try:
        serving(p, url, tokens["kiosk"])
        clients = [threading.Thread(target=load) for _ in range(4)]
        for t in clients:
            t.start()
        time.sleep(1.0)  # let the load run before the kill (bench pacing, not synchronisation)
        t0 = time.monotonic()
        p.p.send_signal(signal.SIGKILL)
        p.p.wait(10)
        stop.set()
        for t in clients:
            t.join(10)
        p = run_daemon(cfg_file, d / "daemon.log")
        t1 = serving(p, url, tokens["kiosk"])
        return t1 - t0, cpu_s(p.p.pid)
    finally:
        stop.set()
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


def summary(xs: list[float]) -> tuple[float, float]:
    return min(xs), statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--per-day", type=int, default=1500)
    ap.add_argument("--waiting", type=int, default=30_000)
    ap.add_argument(
        "--settle", type=float, default=8.0, help="seconds of idling before RSS is read (after the full check)"
    )
    ap.add_argument("--quick", action="store_true", help="2 rounds, 60 days of history")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.days = 2, 60
    # A production install (`pip install /opt/hallctl`) has its bytecode compiled; a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile hallctl at every start and the cold start would measure that.
    for package in ("hallctl", "drivers", "kiosk_ui"):
        compileall.compile_dir(REPO / package, quiet=1)
    py_pass = floor_rss("pass")
    py_libs = floor_rss("import fastapi, pydantic, aiomqtt, uvloop, httptools")
    with tempfile.TemporaryDirectory(prefix="hallctl-footprint-") as tmp:
        work = Path(tmp)
        (work / "broker").mkdir()
        broker = Mosquitto(work / "broker")
        broker.start()
        try:
            plain, demo = measure_rss(work, broker.url, args.settle)
            year = work / "year" / "hallctl.db"
            year.parent.mkdir()
            t = time.monotonic()
            tokens = asyncio.run(build_year(year, args.days, args.per_day, args.waiting))
            built = time.monotonic() - t
            size_mb = sum(f.stat().st_size for f in year.parent.iterdir()) / 1e6
            print(
                f"year: {args.days} days x {args.per_day} tickets + {args.waiting} waiting,"
                f" {size_mb:.0f} MB, built in {built:.0f} s"
            )
            colds = [cold_start(work, year, tokens, broker.url, r) for r in range(args.rounds)]
            kills = [kill9(work, year, tokens, broker.url, r) for r in range(args.rounds)]
        finally:
            broker.stop()
    mib = 1024.0
    print(f"idle RSS  plain {plain / mib:.1f} MiB   demo {demo / mib:.1f} MiB   (goal plain <= 60 MB)")
    print(
        f"  floor   python -c pass {py_pass / mib:.1f} MiB"
        f"   import fastapi, pydantic, aiomqtt, uvloop, httptools {py_libs / mib:.1f} MiB"
    )
    cmin, cmed = summary([c[0] for c in colds])
    ccpu = statistics.median([c[1] for c in colds])
    kmin, kmed = summary([k[0] for k in kills])
    kcpu = statistics.median([k[1] for k in kills])
    print(
        f"cold start -> serving   min {cmin:.2f} s  median {cmed:.2f} s  (process CPU median {ccpu:.2f} s; goal <= 1 s)"
    )
    print(
        f"kill -9 -> serving      min {kmin:.2f} s  median {kmed:.2f} s  (process CPU median {kcpu:.2f} s; goal <= 2 s)"
    )
    hist = f"{args.days} days x {args.per_day} tickets, {args.waiting} waiting, {size_mb:.0f} MB"
    figures.record(
        figures.Figure(
            BENCH,
            "idle RSS, plain hall config",
            round(plain / mib, 1),
            "MiB",
            60.0,
            "<=",
            "4",
            f"VmRSS after {args.settle:.0f} s idle; floor: python -c pass {py_pass / mib:.1f} MiB,"
            f" fastapi+pydantic+aiomqtt+uvloop+httptools {py_libs / mib:.1f} MiB",
        ),
        figures.Figure(BENCH, "idle RSS, demo", round(demo / mib, 1), "MiB", None, "<=", "4", "hallctl demo, VmRSS"),
        figures.Figure(
            BENCH,
            "cold start -> serving (median)",
            round(cmed, 3),
            "s",
            1.0,
            "<=",
            "4",
            f"{args.rounds} rounds, min {cmin:.2f} s, process CPU median {ccpu:.2f} s; {hist}",
        ),
        figures.Figure(
            BENCH,
            "kill -9 -> serving (median)",
            round(kmed, 3),
            "s",
            2.0,
            "<=",
            "4",
            f"{args.rounds} rounds, min {kmin:.2f} s, process CPU median {kcpu:.2f} s; 4 clients issuing; {hist}",
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
