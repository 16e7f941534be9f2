"""A bounded fault soak against a real daemon process: nothing acknowledged is lost, no number reused.

The hall is the demo hall on simulated serial devices (one kiosk's ID reader and printer,
the LED bus and the pads; no PC/SC badge reader), talking to a real Mosquitto. Faults, in
order, each while or after tickets are issued:

* kill -9 during a burst of concurrent issues (several rounds), then restart;
* broker restart (Mosquitto stopped and started on the same port);
* serial unplug / plug of the kiosk printer and reader (several rounds);
* paper out at the kiosk printer (issuing must go on);
* disk full: a second hall with a tiny ``[store] max_size_mb`` issued until ``503 store_full``;
* damaged WAL: kill -9, 64 flipped bytes in ``-wal``, restart (refused, exit 2), restart with
  ``on_damage = "continue"`` (serving, numbers continue after the high-water mark).

Printed per fault: acknowledged vs present, numbers reused, and the time until the daemon
served again (health 200 and an issue acknowledged). Bounded: about two minutes by default,
``--quick`` about 30 s. Not part of CI; ``make bench`` runs it.

Run: .venv/bin/python bench/soak.py [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import getpass
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl import auth  # noqa: E402
from hallctl.demo import DEMO_TOML  # noqa: E402
from hallctl.store import Store  # noqa: E402
from tests.core.core_helpers import free_port, to_toml  # noqa: E402

BENCH = "soak"


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Hall:
    """The daemon as a process on one database, restartable."""

    def __init__(self, workdir: Path, broker_port: int, **store: Any) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
        keep = {"idr-k1", "prn-k1", "led-floor1", "pad1", "pad2", "pad3"}
        raw["device"] = [d for d in raw["device"] if d["id"] in keep]
        for w in raw["window"]:
            w.pop("badge_reader", None)
        raw["kiosk"] = [k for k in raw["kiosk"] if k["id"] == "k1"]
        raw.pop("guide", None)  # its desk kiosk (and printer) is not in this hall
        raw.pop("sensor", None)
        raw.pop("climate_zone", None)
        raw.pop("climate_unit", None)  # the zones' air conditioners go with them
        raw["queue"] = {**raw.get("queue", {}), "per_id_daily_limit": 100}
        raw["store"] = {"path": str(workdir / "hallctl.db"), **store}
        raw["mqtt"] = {"url": f"mqtt://127.0.0.1:{broker_port}", "discovery": False, "reconnect_min_s": 0.2}
        # The bursts are load for the faults, not a rate-limit test: with the demo's limits on, a
        # burst never reached its target (each kill -9 round waited out its 60 s bound) and the
        # disk-full hall was refused with rate_limited long before its store filled.
        raw["api"] = {"host": "127.0.0.1", "port": free_port(), "rate_limit": {"enabled": False}}
        self.raw = raw
        self.db = Path(raw["store"]["path"])
        self.config_file = workdir / "hallctl.toml"
        self.url = f"http://127.0.0.1:{raw['api']['port']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}

    def write(self) -> None:
        self.config_file.write_text(to_toml(self.raw), encoding="utf-8")

    def make_tokens(self) -> None:
        import asyncio

        async def make() -> dict[str, str]:
            store = Store(str(self.db))
            await store.open()
            try:
                return {r: await auth.create_token(store, r, ()) for r in ("kiosk", "admin")}
            finally:
                await store.close()

        self.tokens = asyncio.run(make())

    def spawn(self) -> subprocess.Popen[bytes]:
        self.write()
        with (self.workdir / "daemon.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hallctl.cli", "-c", str(self.config_file), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self.proc

    def start(self, timeout: float = 30) -> float:
        """Start and wait until it serves: health 200 and one issue acknowledged. Returns seconds."""
        t0 = time.monotonic()
        proc = self.spawn()
        with httpx.Client(base_url=self.url, timeout=2) as c:
            while time.monotonic() - t0 < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon exited {proc.returncode}; see {self.workdir / 'daemon.log'}")
                try:
                    if c.get("/api/v1/health").status_code == 200:
                        return time.monotonic() - t0
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise RuntimeError("daemon did not serve in time")

    def kill9(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def health(self) -> dict[str, Any]:
        """The admin view of health: the public one says only whether the store is ok, not why."""
        headers = {"Authorization": f"Bearer {self.tokens['admin']}"} if "admin" in self.tokens else {}
        body: dict[str, Any] = httpx.get(f"{self.url}/api/v1/health", headers=headers, timeout=5).json()
        return body

    def sim(self, path: str, body: dict[str, Any] | None = None) -> int:
        r = httpx.post(
            f"{self.url}/api/v1/sim/{path}",
            json=body or {},
            headers={"Authorization": f"Bearer {self.tokens['admin']}"},
            timeout=10,
        )
        return r.status_code

    def present(self) -> dict[str, str]:
        conn = sqlite3.connect(self.db)
        try:
            return {r[0]: r[1] for r in conn.execute("SELECT id, number FROM tickets")}
        finally:
            conn.close()


class Ledger:
    """Every acknowledged ticket (id -> number) and numbers acknowledged twice."""

    def __init__(self) -> None:
        self.acked: dict[str, str] = {}
        self.reused: set[str] = set()
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            if body["id"] not in self.acked and body["number"] in self.acked.values():
                self.reused.add(body["number"])
            self.acked[body["id"]] = body["number"]

    def refuse(self, code: str) -> None:
        with self._lock:
            self.refused[code] = self.refused.get(code, 0) + 1


def issue_burst(hall: Hall, ledger: Ledger, n: int, workers: int, stop: threading.Event | None = None) -> int:
    """Up to ``n`` issues from ``workers`` threads; stops at the first transport error per worker."""
    done = 0
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {hall.tokens['kiosk']}"}
    cats = ["A", "B", "C", "D"]

    def worker(k: int) -> None:
        nonlocal done
        with httpx.Client(base_url=hall.url, timeout=10) as c:
            for i in range(n // workers + 1):
                if stop is not None and stop.is_set():
                    return
                try:
                    r = c.post("/api/v1/tickets", json={"category": cats[(k + i) % 4]}, headers=headers)
                except httpx.TransportError:
                    return
                if r.status_code == 201:
                    ledger.add(r.json())
                    with lock:
                        done += 1
                else:
                    ledger.refuse(str(r.json().get("code", r.status_code)))
                    if r.status_code >= 500:
                        return

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    return done


def wait_until(cond: Any, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if cond():
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return None


def report(fault: str, hall: Hall, ledger: Ledger, serving_s: float | None, note: str = "") -> dict[str, Any]:
    present = hall.present()
    lost = [n for tid, n in ledger.acked.items() if present.get(tid) != n]
    row = {
        "fault": fault,
        "acked": len(ledger.acked),
        "present": sum(1 for tid, n in ledger.acked.items() if present.get(tid) == n),
        "lost": len(lost),
        "reused": len(ledger.reused),
        "serving_s": None if serving_s is None else round(serving_s, 2),
        "note": note,
    }
    serving = "-" if serving_s is None else f"{serving_s:.2f}s"
    print(
        f"{fault:<22} acked {row['acked']:>5}  present {row['present']:>5}  lost {row['lost']:>3}  "
        f"reused {row['reused']:>2}  serving after {serving:>7}  {note}",
        flush=True,
    )
    return row


def flip_wal(db: Path) -> int:
    """XOR 64 bytes in the middle of the WAL's current frames; returns the frames in the WAL.

    A WAL restarted after a checkpoint keeps stale frames of the previous generation after the
    current ones: only frames whose salts match the header's are current (SQLite's own rule).
    """
    wal = db.with_name(db.name + "-wal")
    data = bytearray(wal.read_bytes()) if wal.exists() else bytearray()
    if len(data) < 32:
        return 0
    page = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    frames = 0
    while 32 + (frames + 1) * (24 + page) <= len(data):
        off = 32 + frames * (24 + page)
        if data[off + 8 : off + 16] != salts:
            break
        frames += 1
    if frames < 2:
        return frames
    start = 32 + (frames * 2 // 5) * (24 + page) + 24
    for i in range(64):
        data[start + i * (page // 64)] ^= 0xA5
    wal.write_bytes(bytes(data))
    return frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="about 30 s instead of about two minutes")
    args = ap.parse_args()
    rounds = 2 if args.quick else 10
    burst = 60 if args.quick else 300
    t_start = time.monotonic()
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="hallctl-soak-"))
    broker = Broker(tmp)
    broker.start()
    hall = Hall(tmp / "hall", broker.port, on_damage="continue")
    ledger = Ledger()
    try:
        hall.make_tokens()
        hall.start()

        # ---- kill -9 during bursts
        for r in range(rounds):
            stop = threading.Event()
            target = len(ledger.acked) + burst

            def kill_mid_burst(target: int = target, stop: threading.Event = stop) -> None:
                wait_until(lambda: len(ledger.acked) >= target, 60)
                hall.kill9()  # while the other requests are in flight
                stop.set()

            killer = threading.Thread(target=kill_mid_burst)
            killer.start()
            issue_burst(hall, ledger, burst * 10, 16, stop)
            killer.join()
            rows.append(report(f"kill -9 #{r + 1}", hall, ledger, hall.start()))

        # ---- broker restart
        broker.stop()
        issue_burst(hall, ledger, burst // 4, 4)
        broker.start()
        t = wait_until(lambda: hall.health().get("mqtt", {}).get("connected"), 30)
        issue_burst(hall, ledger, burst // 4, 4)
        rows.append(report("broker restart", hall, ledger, t, "time = MQTT reconnected"))

        # ---- serial unplug loop (kiosk printer and reader)
        worst = 0.0
        for _ in range(rounds):
            for dev in ("prn-k1", "idr-k1"):
                hall.sim(f"device/{dev}/unplug")
                issue_burst(hall, ledger, 10, 2)
                hall.sim(f"device/{dev}/plug")
                back = wait_until(lambda d=dev: hall.health()["devices"][d]["state"] == "ok", 30)
                worst = max(worst, back if back is not None else float("inf"))
        rows.append(report("serial unplug x" + str(rounds * 2), hall, ledger, worst, "time = slowest device back ok"))

        # ---- paper out
        hall.sim("device/prn-k1/paper", {"state": "out"})
        n = issue_burst(hall, ledger, 20, 2)
        hall.sim("device/prn-k1/paper", {"state": "ok"})
        back = wait_until(lambda: hall.health()["devices"]["prn-k1"]["state"] == "ok", 30)
        rows.append(report("paper out", hall, ledger, back, f"{n} issued while out; time = printer ok"))

        # ---- damaged WAL: refused, then continued
        issue_burst(hall, ledger, 40, 4)
        hall.kill9()
        flipped = flip_wal(hall.db)
        hall.raw["store"]["on_damage"] = "refuse"
        t0 = time.monotonic()
        try:
            refused: int | str = hall.spawn().wait(timeout=30)
        except subprocess.TimeoutExpired:
            refused = "none (it started)"
            hall.stop()
        refuse_s = time.monotonic() - t0
        hall.proc = None
        hall.raw["store"]["on_damage"] = "continue"
        serving = hall.start()
        health = hall.health()
        issue_burst(hall, ledger, 40, 4)
        rows.append(
            report(
                "damaged WAL",
                hall,
                ledger,
                serving,
                f"frames={flipped} refuse: exit {refused} in {refuse_s:.2f}s; continue: damaged="
                f"{health['store'].get('damaged')} status={health['status']}",
            )
        )
        hall.stop()

        # ---- disk full (its own small database)
        full = Hall(tmp / "full", broker.port, max_size_mb=0.3)
        full_ledger = Ledger()
        full.make_tokens()
        full.start()
        for _ in range(40 if args.quick else 80):
            issue_burst(full, full_ledger, 40, 4)
            if "store_full" in full_ledger.refused:
                break
        code = httpx.get(f"{full.url}/api/v1/health", timeout=5).status_code
        full.stop()
        rows.append(
            report(
                "disk full",
                full,
                full_ledger,
                None,
                f"refusals {full_ledger.refused}; health HTTP {code}",
            )
        )
    finally:
        hall.stop()
        broker.stop()
    total_lost = sum(r["lost"] for r in rows if r["fault"] != "damaged WAL")
    print(
        f"\n{len(ledger.acked)} tickets acknowledged in the main hall; lost outside the damaged-WAL fault:"
        f" {total_lost}; numbers reused: {len(ledger.reused)}; {time.monotonic() - t_start:.0f} s",
        flush=True,
    )
    shutil.rmtree(tmp, ignore_errors=True)
    record(rows, len(ledger.acked), total_lost, len(ledger.reused), "quick" if args.quick else "full")
    return 0 if total_lost == 0 and not ledger.reused else 1


def record(rows: list[dict[str, Any]], acked: int, lost: int, reused: int, mode: str) -> None:
    """The soak's key figures in bench/results.json: what was acknowledged, lost, reused, and how fast it came back."""
    kills = [r["serving_s"] for r in rows if r["fault"].startswith("kill -9") and r["serving_s"] is not None]
    by_fault = {r["fault"]: r for r in rows}
    how = f"{mode} run, {len(kills)} kill -9 rounds during bursts of concurrent issues; small database"
    out = [
        figures.Figure(BENCH, "tickets acknowledged (main hall)", float(acked), "tickets", detail=how),
        figures.Figure(
            BENCH, "acknowledged tickets lost (outside the damaged-WAL fault)", float(lost), "tickets", 0.0, detail=how
        ),
        figures.Figure(BENCH, "ticket numbers reused", float(reused), "numbers", 0.0, detail=how),
    ]
    if kills:
        out += [
            figures.Figure(
                BENCH,
                "kill -9 -> serving again (median)",
                round(statistics.median(kills), 2),
                "s",
                detail=f"{how}; max {max(kills):.2f} s; health 200 and one issue acknowledged",
            ),
            figures.Figure(BENCH, "kill -9 -> serving again (max)", round(max(kills), 2), "s", detail=how),
        ]
    for fault, name in (
        ("broker restart", "broker restart -> MQTT reconnected"),
        ("damaged WAL", "damaged WAL -> serving (on_damage = continue)"),
    ):
        row = by_fault.get(fault)
        if row is not None and row["serving_s"] is not None:
            out.append(figures.Figure(BENCH, name, row["serving_s"], "s", detail=f"{mode} run; {row['note']}"))
    figures.record(*out)


if __name__ == "__main__":
    raise SystemExit(main())
