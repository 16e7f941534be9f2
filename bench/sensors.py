"""Sensors: 500 zigbee2mqtt readings/s, what they cost the daemon, whether any is lost silently,
and whether they delay the queue (issue 12, goal 2).

One run, one Mosquitto (started here on a free port, ``max_queued_messages 0`` so the broker
itself never drops a message for a slow subscriber and every loss is the daemon's), one daemon started as a
separate process (``python -m hallctl.cli -c FILE run``) with ``--sensors`` zigbee sensors.
Each round has three phases of ``--seconds`` each:

* ``sensors``: a separate publisher process sends ``--rate`` readings/s (QoS 0 as zigbee2mqtt
  does by default, ``--qos 1`` to change; zigbee2mqtt JSON state payloads, a slow random
  walk per sensor) and nothing else runs; the daemon's
  CPU time over the window (psutil ``cpu_times`` of its pid) ÷ wall time = % of one core;
* ``off``: issue (``POST /tickets`` with an Idempotency-Key) + ``call-next``, back to back
  from one client, no sensor load: the latency of the pair;
* ``on``: the same pairs with the publisher running again.

``off`` comes before ``on`` in odd rounds and after it in even ones (off-on, on-off, ...), so
the shared machine's drifting load is not charged to one side; each round's p50 on/off is
printed beside the pooled ratios.

After each sensor phase the bench waits (bounded) until the daemon's counters stop moving.
A last sensor phase ends with the daemon stopped (SIGINT) the moment the publisher is done,
backlog or not, as a restart would; then the database is read: readings sent vs received vs
applied vs stored (rows of ``sensor_readings`` in the old schema, the sum of the minute
aggregates' counts in the new one) vs counted as lost (health), and ``silent`` = sent −
stored − counted (health before the stop, plus what the daemon logged as counted while
stopping). The machine is shared: CPU time is the daemon's own, latency a ratio of
interleaved phases.

    .venv/bin/python bench/sensors.py [--rate 500] [--sensors 500] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl import auth  # noqa: E402
from hallctl.store import Store  # noqa: E402
from tests.mqtt.mqtt_helpers import Mosquitto, free_port  # noqa: E402

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
enabled = false

[mqtt]
url = "{mqtt}"
discovery = false

# The bench measures the queue's latency, not the window policy: one token calls without a sign-in,
# and each call-next finishes the ticket before (as before these policies existed).
[queue]
require_sign_in = false
call_next_unstarted = "finish"

[[category]]
prefix = "A"
name = "便民服务"
digits = 5

[[window]]
number = 1
categories = ["A"]
"""

SENSOR = """
[[sensor]]
id = "th{i:03d}"
source = "zigbee"
friendly_name = "th_{i:03d}"
"""


def publish(url: str, rate: float, seconds: float, sensors: int, qos: int) -> None:
    """The publisher process: ``rate`` readings/s for ``seconds``; prints how many it sent."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    rng = random.Random(12)
    temps = [21.0 + rng.random() * 3 for _ in range(sensors)]
    hums = [40.0 + rng.random() * 10 for _ in range(sensors)]
    sent = 0
    start = time.perf_counter()
    last: Any = None
    while True:
        due = int((time.perf_counter() - start) * rate)
        if time.perf_counter() - start >= seconds:
            break
        while sent < due:
            i = sent % sensors
            temps[i] = round(temps[i] + rng.uniform(-0.05, 0.05), 2)
            hums[i] = round(hums[i] + rng.uniform(-0.3, 0.3), 1)
            payload = json.dumps(
                {"battery": 97, "linkquality": 120, "temperature": temps[i], "humidity": hums[i]},
                separators=(",", ":"),
            )
            last = client.publish(f"zigbee2mqtt/th_{i:03d}", payload, qos=qos)
            sent += 1
        time.sleep(0.002)  # pacing the publisher itself: at most 2 ms behind its schedule
    if last is not None:
        last.wait_for_publish(timeout=30)
    client.loop_stop()
    client.disconnect()
    print(json.dumps({"sent": sent}))


class Daemon:
    def __init__(self, workdir: Path, mqtt_url: str, sensors: int) -> None:
        self.workdir = workdir
        self.db = workdir / "hallctl.db"
        self.port = free_port()
        self.cfg = workdir / "hallctl.toml"
        body = CONFIG.format(db=self.db, port=self.port, mqtt=mqtt_url)
        body += "".join(SENSOR.format(i=i) for i in range(sensors))
        self.cfg.write_text(body, encoding="utf-8")
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = asyncio.run(self._token())
        self.proc: subprocess.Popen[bytes] | None = None

    async def _token(self) -> str:
        store = Store(str(self.db))
        await store.open()
        try:
            return await auth.create_token(store, "admin", label="bench")
        finally:
            await store.close()

    def start(self) -> None:
        log = (self.workdir / "daemon.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hallctl.cli", "-c", str(self.cfg), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited: {(self.workdir / 'daemon.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # readiness poll of an external process
        self.stop()
        raise SystemExit("daemon did not become healthy in 60 s")

    def health(self) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1/health", headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        got: dict[str, Any] = r.json()
        return got

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def counters(h: dict[str, Any]) -> dict[str, int]:
    """What the daemon says it did with the readings (old and new health shapes)."""
    z = h.get("zigbee") or {}
    s = h.get("sensors") or {}
    return {
        "received": int(z.get("messages", z.get("readings", 0))),
        "applied": int(s.get("applied", z.get("readings", 0))),
        "counted": int(s.get("lost", 0)) + int(z.get("shed", 0)),
        "mqtt_outbox": int((h.get("mqtt") or {}).get("outbox", 0)),
    }


def settle(d: Daemon, timeout: float = 120.0) -> dict[str, int]:
    """Poll until the daemon's reading counters stop moving (bounded): its backlog is worked off."""
    deadline = time.monotonic() + timeout
    last = counters(d.health())
    while time.monotonic() < deadline:
        time.sleep(1.0)  # polling an external process's counters
        now = counters(d.health())
        if now == last:
            return now
        last = now
    return last


def counted_at_stop(log: str) -> int:
    """Readings the daemon counted while stopping (its health is gone by then; the log says it)."""
    shed = sum(int(n) for n in re.findall(r"session ended with (\d+) reading messages", log))
    lost = sum(int(n) for n in re.findall(r"sensors: (\d+) readings not stored at stop", log))
    return shed + lost


def stored(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "sensor_minutes" in tables:
            return int(conn.execute("SELECT COALESCE(SUM(count), 0) FROM sensor_minutes").fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM sensor_readings").fetchone()[0])
    finally:
        conn.close()


async def probe(url: str, token: str, seconds: float) -> list[float]:
    """Issue + call-next pairs back to back for ``seconds``: the latency of each pair."""
    out: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            r = await client.post(
                "/api/v1/tickets", json={"category": "A"}, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            r.raise_for_status()
            r = await client.post("/api/v1/windows/1/call-next")
            r.raise_for_status()
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)  # a window's pace, not a flood: the probe must not be the load
    return out


def start_publisher(url: str, rate: float, seconds: float, sensors: int, qos: int) -> subprocess.Popen[bytes]:
    args = ["--publish", url, "--rate", str(rate), "--seconds", str(seconds), "--sensors", str(sensors)]
    args += ["--qos", str(qos)]
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, cwd=REPO)


def finish_publisher(proc: subprocess.Popen[bytes]) -> int:
    out, _ = proc.communicate(timeout=120)
    return int(json.loads(out.decode().strip().splitlines()[-1])["sent"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0, help="readings per second")
    ap.add_argument("--sensors", type=int, default=500, help="zigbee sensors in the config")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--qos", type=int, default=0, choices=(0, 1), help="publisher QoS (zigbee2mqtt's default is 0)")
    ap.add_argument("--publish", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish(args.publish, args.rate, args.seconds, args.sensors, args.qos)
        return 0

    with tempfile.TemporaryDirectory(prefix="hallctl-bench-sensors-", dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        broker_dir = workdir / "broker"
        broker_dir.mkdir()
        broker = Mosquitto(broker_dir, extra="max_queued_messages 0\nmax_inflight_messages 0\n")
        broker.start()
        d = Daemon(workdir, broker.url, args.sensors)
        sent = 0
        cpu: list[float] = []
        lat_off: list[float] = []
        lat_on: list[float] = []
        backlog_s: list[float] = []
        try:
            d.start()
            assert d.proc is not None
            ps = psutil.Process(d.proc.pid)
            round_ratios: list[float] = []
            for rnd in range(args.rounds):
                # sensors alone: the daemon's CPU over the window
                before = settle(d)
                pub = start_publisher(broker.url, args.rate, args.seconds, args.sensors, args.qos)
                c0, w0 = ps.cpu_times(), time.perf_counter()
                sent += finish_publisher(pub)
                c1, w1 = ps.cpu_times(), time.perf_counter()
                cpu.append(((c1.user + c1.system) - (c0.user + c0.system)) / (w1 - w0) * 100)
                t_settle = time.perf_counter()
                settle(d)
                backlog_s.append(time.perf_counter() - t_settle)
                # off (the queue alone) and on (the queue with the sensors), in the order off-on, then
                # on-off in the next round: the shared machine's load drifts, and a fixed order would
                # charge the drift to one side.
                for phase in ("off", "on") if rnd % 2 == 0 else ("on", "off"):
                    if phase == "off":
                        off = asyncio.run(probe(d.url, d.token, args.seconds))
                        lat_off += off
                    else:
                        pub = start_publisher(broker.url, args.rate, args.seconds, args.sensors, args.qos)
                        on = asyncio.run(probe(d.url, d.token, args.seconds))
                        lat_on += on
                        sent += finish_publisher(pub)
                        settle(d)
                round_ratios.append(statistics.median(on) / statistics.median(off))
                after = settle(d)
                print(
                    f"round {rnd + 1}: cpu {cpu[-1]:.1f} % of one core; backlog worked off in {backlog_s[-1]:.1f} s;"
                    f" received {after['received'] - before['received']}; p50 on/off {round_ratios[-1]:.2f}"
                    f" ({'off, on' if rnd % 2 == 0 else 'on, off'}); loadavg {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
            # Last: stop the daemon the moment the publisher is done, backlog or not (as an
            # operator's restart would): what it had not handled must be counted too.
            pub = start_publisher(broker.url, args.rate, args.seconds, args.sensors, args.qos)
            sent += finish_publisher(pub)
            final = counters(d.health())
        finally:
            d.stop()
            broker.stop()
        in_db = stored(d.db)
        at_stop = counted_at_stop((d.workdir / "daemon.log").read_text(errors="replace"))
        final["counted"] += at_stop

    silent = sent - in_db - final["counted"]
    p50_off, p50_on = statistics.median(lat_off) * 1000, statistics.median(lat_on) * 1000
    p95_off, p95_on = figures.percentile(lat_off, 0.95) * 1000, figures.percentile(lat_on, 0.95) * 1000
    ratio = p95_on / p95_off
    ratio50 = p50_on / p50_off
    cpu_pct = statistics.median(cpu)
    print(
        f"readings: sent {sent}, received {final['received']}, applied {final['applied']}, stored {in_db}, "
        f"counted lost {final['counted']}, silent loss {silent} ({silent / max(sent, 1) * 100:.1f} %)"
    )
    print(
        f"daemon CPU with {args.rate:.0f} readings/s: {', '.join(f'{c:.1f}' for c in cpu)} % of one core "
        f"(median {cpu_pct:.1f}); backlog after the publisher stopped: {', '.join(f'{b:.1f}' for b in backlog_s)} s"
    )
    print(
        f"issue+call-next: off p50 {p50_off:.1f} ms p95 {p95_off:.1f} ms (n={len(lat_off)}); "
        f"on p50 {p50_on:.1f} ms p95 {p95_on:.1f} ms (n={len(lat_on)}); p95 on/off {ratio:.2f}, "
        f"p50 on/off {p50_on / p50_off:.2f}; per round p50 on/off {', '.join(f'{r:.2f}' for r in round_ratios)}"
    )
    detail = (
        f"{args.rate:.0f} readings/s over {args.sensors} zigbee sensors, {args.rounds}×{args.seconds:.0f} s;"
        f" load {os.getloadavg()[0]:.1f}"
    )
    figures.record(
        figures.Figure(
            "sensors", "daemon CPU at the sensor rate", round(cpu_pct, 1), "% of core", 10, "<=", "2", detail
        ),
        figures.Figure(
            "sensors",
            "silent reading loss",
            silent,
            "readings",
            0,
            "<=",
            "2",
            f"sent {sent}, stored {in_db}, counted {final['counted']}",
        ),
        figures.Figure(
            "sensors",
            "issue+call p50 with ÷ without sensors",
            round(ratio50, 2),
            "ratio",
            1.2,
            "<=",
            "2",
            f"p50 {p50_on:.1f} / {p50_off:.1f} ms, interleaved phases, {len(lat_on)}+{len(lat_off)} pairs",
        ),
        figures.Figure(
            "sensors",
            "issue+call p95 with ÷ without sensors",
            round(ratio, 2),
            "ratio",
            1.2,
            "<=",
            "2",
            f"p95 {p95_on:.1f} / {p95_off:.1f} ms, p50 {p50_on:.1f} / {p50_off:.1f} ms, interleaved",
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
