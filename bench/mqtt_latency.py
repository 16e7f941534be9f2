"""How long from a window pressing "call next" to the calling screen hearing it over MQTT.

Measures, in one run on one broker (a Mosquitto started here on a free port):

* ``call``: HTTP ``POST /api/v1/windows/1/call-next`` sent → ``ticket_called``
  received by an external MQTT subscriber (what a calling screen waits for);
* ``bare``: an external client's QoS 1 publish → the same subscriber receiving it
  (the broker's own round trip, the floor no daemon can beat).

and prints p50/p99 of each and their ratio, so a regression in the daemon's path
(store fsync, bus, outbox decision, PUBACK wait) shows against the same machine.

    .venv/bin/python bench/mqtt_latency.py [--n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import aiomqtt
import httpx

from hallctl import auth, config
from hallctl.daemon import Hall


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _wait_port(port: int) -> None:
    async with asyncio.timeout(5):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)  # polling a port that is coming up; nothing to subscribe to yet
                continue
            writer.close()
            await writer.wait_closed()
            return


async def run(n: int) -> None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        broker = await asyncio.create_subprocess_exec(binary, "-c", str(conf), stderr=subprocess.DEVNULL)
        try:
            await _wait_port(port)
            await _measure(n, port, Path(tmp))
        finally:
            broker.terminate()
            await broker.wait()


async def _measure(n: int, port: int, tmp: Path) -> None:
    hall_id = "bench" + uuid.uuid4().hex[:6]
    cfg = config.parse(
        {
            "hall": {"id": hall_id, "name": "基准测试大厅"},
            "store": {"path": str(tmp / "bench.db")},
            "api": {"port": 0},
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
            "category": [{"prefix": "A", "name": "便民服务"}],
            "window": [{"number": 1, "categories": ["A"]}],
            "queue": {"evaluation_timeout_s": 3600},
        }
    )
    hall = Hall(cfg)
    await hall.start()
    try:
        token = await auth.create_token(hall.store, "window", (1,))
        for _ in range(n + 10):
            await hall.service.issue("A")
        called_topic = f"hallctl/{hall_id}/event/ticket_called"
        bare_topic = f"bench/{hall_id}/bare"
        async with (
            aiomqtt.Client("127.0.0.1", port, identifier=f"screen-{hall_id}") as screen,
            aiomqtt.Client("127.0.0.1", port, identifier=f"pub-{hall_id}") as pub,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{hall.api.port}", headers={"Authorization": f"Bearer {token}"}
            ) as http,
        ):
            await screen.subscribe(called_topic, qos=1)
            await screen.subscribe(bare_topic, qos=1)
            inbox: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

            async def pump() -> None:
                async for m in screen.messages:
                    inbox.put_nowait(m)

            pumper = asyncio.create_task(pump(), name="bench.mqtt.pump")
            try:
                call: list[float] = []
                bare: list[float] = []
                for i in range(n + 10):  # the first 10 of each warm up connections and caches
                    t0 = time.perf_counter()
                    r = await http.post("/api/v1/windows/1/call-next")
                    r.raise_for_status()
                    number = r.json()["ticket"]["number"]
                    while True:
                        m = await asyncio.wait_for(inbox.get(), 10)
                        if m.topic.value == called_topic and json.loads(m.payload)["number"] == number:
                            break
                    t1 = time.perf_counter()
                    marker = str(i).encode()
                    await pub.publish(bare_topic, marker, qos=1)
                    while True:
                        m = await asyncio.wait_for(inbox.get(), 10)
                        if m.topic.value == bare_topic and m.payload == marker:
                            break
                    t2 = time.perf_counter()
                    if i >= 10:
                        call.append((t1 - t0) * 1000)
                        bare.append((t2 - t1) * 1000)
            finally:
                pumper.cancel()
                await asyncio.gather(pumper, return_exceptions=True)
    finally:
        await hall.stop()
    c50, c99, b50, b99 = _pct(call, 0.5), _pct(call, 0.99), _pct(bare, 0.5), _pct(bare, 0.99)
    print(f"mqtt latency, {n} samples, Mosquitto on 127.0.0.1:{port}")
    print(
        f"  call-next HTTP -> ticket_called at subscriber: p50 {c50:7.2f} ms   p99 {c99:7.2f} ms"
        f"   mean {statistics.fmean(call):.2f} ms"
    )
    print(f"  bare QoS1 publish -> receive (same broker):     p50 {b50:7.2f} ms   p99 {b99:7.2f} ms")
    print(f"  ratio call/bare:                                p50 {c50 / b50:7.1f} x   p99 {c99 / b99:7.1f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="samples after 10 warm-up rounds")
    args = parser.parse_args()
    asyncio.run(run(args.n))


if __name__ == "__main__":
    main()
