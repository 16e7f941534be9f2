"""A whole busy hall's load on the daemon, as a share of one core (issue 12, goal 5).

The daemon runs as a separate process (``python -m hallctl.cli -c FILE run``) against a
real Mosquitto started here; this script plays the hall around it for ``--seconds``:

* ``--windows`` windows (100) each calling the next visitor over HTTP when its previous
  service ends (service time exponential, mean ``--service`` s);
* ``--kiosks`` kiosks (50) each issuing a ticket every ``--kiosk-interval`` s on average
  (Poisson arrivals), with an ``Idempotency-Key`` as kiosks send;
* ``--sensors`` zigbee2mqtt sensors (500) each reporting once a second (QoS 0, as
  zigbee2mqtt publishes), spread evenly over the second, from a separate thread;
* ``--screens`` screens (20) holding ``GET /api/v1/events`` open and reading everything.

The daemon's CPU includes its children (the voice renderer, which renders every call as it
happens for the screens' WAV voice).

Printed: the daemon's CPU time over the measured window as a share of one core (goal
≤ 20 %), with the broker's and this script's own CPU beside it so a reader sees who
spent what; what was done (tickets, calls, readings, stream bytes) and issue/call
latency p50/p99. The defaults are a very busy hall: 2.5 tickets/s is 9,000 an hour.

    .venv/bin/python bench/hall_day.py [--seconds 60] [--windows 100] [--kiosks 50]
        [--sensors 500] [--screens 20] [--kiosk-interval 20] [--service 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from tests.core.core_helpers import Daemon  # noqa: E402
from tests.hostile.stream_clients import SseClient  # noqa: E402
from tests.mqtt.mqtt_helpers import Mosquitto, wait_for_port  # noqa: E402

CATEGORIES = ("A", "B", "C", "D")


def hall_config(db: str, broker_url: str, windows: int, sensors: int) -> dict[str, Any]:
    return {
        "hall": {"id": "bench", "name": "基准测试大厅"},
        "store": {"path": db},
        "api": {"host": "127.0.0.1", "port": 0, "rate_limit": {"enabled": False}},
        "mqtt": {"url": broker_url, "discovery": True},
        # The day's load, not the window policy: windows call without a sign-in and each call-next
        # finishes the ticket before (the bench's clerks never press start).
        "queue": {"require_sign_in": False, "call_next_unstarted": "finish"},
        "category": [{"prefix": p, "name": f"业务{p}", "digits": 4, "target_wait_minutes": 20} for p in CATEGORIES],
        # Every window serves two categories, so the policy has a real choice to make.
        "window": [
            {"number": n, "categories": [CATEGORIES[n % 4], CATEGORIES[(n + 1) % 4]]} for n in range(1, windows + 1)
        ],
        "sensor": [
            {"id": f"s{i:03d}", "source": "zigbee", "friendly_name": f"hall_s{i:03d}", "floor": 1 + i % 4}
            for i in range(sensors)
        ],
    }


class Http:
    """One keep-alive HTTP/1.1 connection with hand-written requests (cheap on the client side).

    Like a browser, it opens a new connection when the last one has been idle longer than the
    daemon keeps idle connections (``[api] keep_alive_s``, 5 s): a kiosk issues every ~20 s.
    """

    IDLE_S = 4.0

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def post(self, path: str, body: dict[str, Any] | None = None, headers: str = "") -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.used > self.IDLE_S:
            await self.close()
            self.writer = None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.used = time.monotonic()
        assert self.reader is not None
        raw = json.dumps(body or {}).encode()
        self.writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
            ).encode()
            + raw
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        self.used = time.monotonic()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


class Load:
    def __init__(self, args: argparse.Namespace, port: int, tokens: dict[str, str]) -> None:
        self.args, self.port, self.tokens = args, port, tokens
        self.issued = self.calls = self.empty_calls = self.errors = 0
        self.issue_lat: list[float] = []
        self.call_lat: list[float] = []
        self.stream_bytes = 0
        self.rng = random.Random(7)

    async def kiosk(self, stop_at: float) -> None:
        http = Http(self.port, self.tokens["kiosk"])
        try:
            await asyncio.sleep(self.rng.uniform(0, self.args.kiosk_interval))
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                status, _ = await http.post(
                    "/api/v1/tickets",
                    {"category": self.rng.choice(CATEGORIES)},
                    f"Idempotency-Key: {uuid.uuid4()}\r\n",
                )
                if status == 201:
                    self.issued += 1
                    self.issue_lat.append(time.perf_counter() - t0)
                else:
                    self.errors += 1
                await asyncio.sleep(self.rng.expovariate(1 / self.args.kiosk_interval))
        finally:
            await http.close()

    async def window(self, n: int, stop_at: float) -> None:
        http = Http(self.port, self.tokens["window"])
        try:
            await asyncio.sleep(self.rng.uniform(0, self.args.service))
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                status, body = await http.post(f"/api/v1/windows/{n}/call-next")
                if status != 200:
                    self.errors += 1
                    await asyncio.sleep(5)
                    continue
                self.call_lat.append(time.perf_counter() - t0)
                if json.loads(body).get("ticket") is None:
                    self.empty_calls += 1
                    await asyncio.sleep(5)  # nobody waiting: the clerk looks again in a while
                    continue
                self.calls += 1
                await asyncio.sleep(self.rng.expovariate(1 / self.args.service))
        finally:
            await http.close()

    async def screen(self, stop_at: float) -> None:
        client = await SseClient.open(self.port, self.tokens["display"])
        try:
            await client.head()
            while time.monotonic() < stop_at:
                try:
                    async with asyncio.timeout(max(0.1, stop_at - time.monotonic())):
                        chunk = await client.reader.read(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                self.stream_bytes += len(chunk)
        finally:
            client.writer.close()


def sensors_thread(port: int, sensors: int, stop: threading.Event, sent: list[int]) -> None:
    """``sensors`` readings a second, evenly spread, until ``stop``; counts what was published."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-zigbee2mqtt")
    client.connect("127.0.0.1", port)
    client.loop_start()
    rng = random.Random(3)
    # A room's air moves slowly: each sensor walks a few hundredths of a degree per second
    # around its own start value, as a real one polled at 1 Hz would.
    temps = [24 + rng.uniform(-1.5, 1.5) for _ in range(sensors)]
    hums = [rng.uniform(40, 60) for _ in range(sensors)]
    try:
        period = 1.0 / sensors
        next_at = time.monotonic()
        i = 0
        while not stop.is_set():
            s = i % sensors
            temps[s] += rng.gauss(0, 0.03)
            hums[s] = min(95.0, max(5.0, hums[s] + rng.gauss(0, 0.1)))
            payload = {"temperature": round(temps[s], 2), "humidity": round(hums[s], 1)}
            client.publish(f"zigbee2mqtt/hall_s{s:03d}", json.dumps(payload), qos=0)
            sent[0] += 1
            i += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
    finally:
        client.loop_stop()
        client.disconnect()


def cpu_s(proc: psutil.Process) -> float:
    """User + system CPU of ``proc`` and its live children (the daemon's voice renderer is one)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


async def drive(args: argparse.Namespace, daemon: Daemon, tokens: dict[str, str], broker_pid: int) -> dict[str, Any]:
    load = Load(args, daemon.port, tokens)
    stop = threading.Event()
    sent = [0]
    sensor_thread = threading.Thread(
        target=sensors_thread, args=(broker_port(daemon), args.sensors, stop, sent), daemon=True
    )
    if args.sensors:
        sensor_thread.start()
    start = time.monotonic()
    stop_at = start + args.warmup + args.seconds
    tasks = [asyncio.create_task(load.screen(stop_at)) for _ in range(args.screens)]
    tasks += [asyncio.create_task(load.kiosk(stop_at)) for _ in range(args.kiosks)]
    tasks += [asyncio.create_task(load.window(n, stop_at)) for n in range(1, args.windows + 1)]
    assert daemon.proc is not None
    proc, broker, me = psutil.Process(daemon.proc.pid), psutil.Process(broker_pid), psutil.Process()
    await asyncio.sleep(args.warmup)  # the load's own ramp: windows and kiosks start spread out
    c0 = (cpu_s(proc), cpu_s(broker), cpu_s(me), time.monotonic(), sent[0], load.issued, load.calls)
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    c1 = (cpu_s(proc), cpu_s(broker), cpu_s(me), time.monotonic(), sent[0], load.issued, load.calls)
    stop.set()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException):  # a client that died would silently lower the load
            load.errors += 1
            print(f"a client failed: {result!r}")
    if args.sensors:
        sensor_thread.join(timeout=5)
    wall = c1[3] - c0[3]
    return {
        "seconds": round(wall, 1),
        "daemon_core_share": (c1[0] - c0[0]) / wall,
        "broker_core_share": (c1[1] - c0[1]) / wall,
        "bench_core_share": (c1[2] - c0[2]) / wall,
        "readings_per_s": (c1[4] - c0[4]) / wall,
        "tickets_per_s": (c1[5] - c0[5]) / wall,
        "calls_per_s": (c1[6] - c0[6]) / wall,
        "issued": load.issued,
        "calls": load.calls,
        "empty_calls": load.empty_calls,
        "errors": load.errors,
        "stream_bytes": load.stream_bytes,
        "issue_p50_ms": figures.percentile(load.issue_lat, 0.5) * 1000,
        "issue_p99_ms": figures.percentile(load.issue_lat, 0.99) * 1000,
        "call_p50_ms": figures.percentile(load.call_lat, 0.5) * 1000,
        "call_p99_ms": figures.percentile(load.call_lat, 0.99) * 1000,
        "idle_core_share": args.idle_share,
    }


def broker_port(daemon: Daemon) -> int:
    url = str(daemon.data["mqtt"]["url"])
    return int(url.rsplit(":", 1)[1])


def idle_share(daemon: Daemon, seconds: float) -> float:
    """The daemon's CPU with the hall configured but nobody using it (timers, housekeeping)."""
    assert daemon.proc is not None
    proc = psutil.Process(daemon.proc.pid)
    c0, t0 = cpu_s(proc), time.monotonic()
    time.sleep(seconds)  # measuring an idle process over a fixed window, nothing to wait for
    return (cpu_s(proc) - c0) / (time.monotonic() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=10.0, help="load running before the window opens")
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--kiosks", type=int, default=50)
    ap.add_argument("--sensors", type=int, default=500)
    ap.add_argument("--screens", type=int, default=20)
    ap.add_argument("--kiosk-interval", type=float, default=20.0, help="mean seconds between one kiosk's tickets")
    ap.add_argument("--service", type=float, default=40.0, help="mean service time per visitor, seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hallctl-hallday-") as tmp:
        work = Path(tmp)
        (work / "broker").mkdir()
        mosq = Mosquitto(work / "broker")
        mosq.start()
        wait_for_port(mosq.port)
        daemon = Daemon(work / "hall")
        daemon.data = hall_config(str(work / "hall" / "hallctl.db"), mosq.url, args.windows, args.sensors)
        tokens = asyncio.run(
            daemon.create_tokens(
                {
                    "kiosk": ("kiosk", ()),
                    "window": ("window", tuple(range(1, args.windows + 1))),
                    "display": ("display", ()),
                }
            )
        )
        daemon.start(timeout=60)
        try:
            args.idle_share = idle_share(daemon, 5.0)
            assert mosq.proc is not None
            r = asyncio.run(drive(args, daemon, tokens, mosq.proc.pid))
        finally:
            daemon.stop()
            mosq.stop()
    print(
        f"hall: {args.windows} windows, {args.kiosks} kiosks (one ticket per {args.kiosk_interval:g} s each), "
        f"{args.sensors} sensors at 1 Hz, {args.screens} screens; measured {r['seconds']} s after {args.warmup:g} s"
    )
    print(
        f"done: {r['tickets_per_s']:.2f} tickets/s, {r['calls_per_s']:.2f} calls/s,"
        f" {r['readings_per_s']:.0f} readings/s"
        f" ({r['issued']} issued, {r['calls']} called, {r['empty_calls']} calls found nobody, {r['errors']} errors,"
        f" {r['stream_bytes']:,} bytes to the screens)"
    )
    print(
        f"latency: issue p50 {r['issue_p50_ms']:.1f} ms p99 {r['issue_p99_ms']:.1f} ms;"
        f" call p50 {r['call_p50_ms']:.1f} ms p99 {r['call_p99_ms']:.1f} ms"
    )
    print(
        f"CPU, share of one core: daemon {r['daemon_core_share']:.1%} (goal ≤ 20 %; idle {r['idle_core_share']:.1%}),"
        f" broker {r['broker_core_share']:.1%}, this load generator {r['bench_core_share']:.1%}"
    )
    detail = (
        f"{args.windows} windows, {args.kiosks} kiosks, {args.sensors} sensors 1 Hz, {args.screens} screens,"
        f" {r['seconds']} s; {r['tickets_per_s']:.2f} tickets/s, {r['readings_per_s']:.0f} readings/s"
    )
    figures.record(
        figures.Figure(
            "hall_day",
            "daemon CPU under a busy hall's load",
            round(r["daemon_core_share"] * 100, 1),
            "% core",
            20.0,
            "<=",
            "5",
            detail,
        ),
        figures.Figure(
            "hall_day", "daemon CPU idle (same hall, no load)", round(r["idle_core_share"] * 100, 2), "% core"
        ),
        figures.Figure("hall_day", "broker CPU under the same load", round(r["broker_core_share"] * 100, 1), "% core"),
        figures.Figure("hall_day", "issue p99 under hall load", round(r["issue_p99_ms"], 1), "ms"),
        figures.Figure("hall_day", "call p99 under hall load", round(r["call_p99_ms"], 1), "ms"),
    )
    return 0 if r["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
