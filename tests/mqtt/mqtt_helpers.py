"""Helpers for the MQTT tests: real Mosquitto processes, a hall builder, a listener.

Mosquitto is required: without it these tests fail (they never skip), because a
green run that tested nothing would hide a broken integration bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hallctl import config
from hallctl.daemon import Hall

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF_DIR = REPO / "config" / "mosquitto"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto mosquitto-clients); MQTT tests need it")
    return found


def tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if found is None:
        pytest.fail(f"{name} is not installed (apt-get install mosquitto-clients)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Mosquitto:
    """One mosquitto process with its config in ``workdir``; restartable on the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        extra: str = "",
        anonymous: bool = True,
        persistence: bool = False,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        # `user`: mosquitto started as root would switch to the `mosquitto` user and lose the temp dir.
        lines = [
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if anonymous else 'false'}",
        ]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 3600"]
        else:
            lines.append("persistence false")
        lines.append(f"log_dest file {workdir}/mosquitto.log")
        lines.append("log_type error warning notice information")
        self.conf.write_text("\n".join(lines) + "\n" + extra)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "stderr.log").open("ab"),
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"mosquitto did not start; log:\n{self.log()}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        parts = []
        for name in ("mosquitto.log", "stderr.log"):
            p = self.workdir / name
            if p.exists():
                parts.append(p.read_text(errors="replace")[-4000:])
        return "\n".join(parts)


def hall_raw(tmp_path: Path, hall_id: str, url: str | None, **mqtt: Any) -> dict[str, Any]:
    """A small hall: two categories, two windows, one kiosk, a printer, a sensor and a zone."""
    m: dict[str, Any] = {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "keepalive": 5, **mqtt}
    if url is not None:
        m["url"] = url
    else:
        m.setdefault("embedded_port", 0)
    return {
        "hall": {"id": hall_id, "name": "测试政务服务中心"},
        "store": {"path": str(tmp_path / f"{hall_id}.db")},
        "api": {"port": 0},
        "mqtt": m,
        "category": [
            {"prefix": "A", "name": "便民服务", "name_en": "Citizen services"},
            {"prefix": "B", "name": "法人服务", "name_en": "Company services"},
        ],
        "window": [
            {"number": 1, "name": "1号窗口", "categories": ["A"]},
            {"number": 3, "name": "3号窗口", "categories": ["B", "A"]},
        ],
        "kiosk": [{"id": "k1", "categories": ["A", "B"]}],
        "staff": [{"id": "0231", "name": "李明"}],
        "queue": {
            "evaluation_timeout_s": 600,
            "recall_min_gap_s": 0,
            "require_sign_in": False,
            "call_next_unstarted": "finish",
        },
        # These halls run on the real clock: without the statutory calendar they work on any day
        # (a holiday, or a year the calendar package has no data for yet). The calendar has its own tests.
        "calendar": {"statutory": False},
        "sensor": [{"id": "floor1", "name": "一楼", "source": "zigbee", "friendly_name": "hall_th_1"}],
        "climate_zone": [{"id": "floor1", "name": "一楼", "sensors": ["floor1"]}],
    }


def make_config(tmp_path: Path, hall_id: str, url: str | None, **mqtt: Any) -> config.Config:
    return config.parse(hall_raw(tmp_path, hall_id, url, **mqtt))


@contextlib.asynccontextmanager
async def running(cfg: config.Config) -> AsyncIterator[Hall]:
    hall = Hall(cfg)
    await hall.start()
    try:
        yield hall
    finally:
        await hall.stop()


class Listener:
    """An external subscriber that keeps every message it gets, for assertions."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._new = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.barrier_topic = f"test/barrier/{uuid.uuid4().hex}"

    async def _pump(self) -> None:
        async for msg in self.client.messages:
            async with self._new:
                self.messages.append(msg)
                self._new.notify_all()

    async def wait_for(
        self, pred: Callable[[aiomqtt.Message], bool], timeout: float = 5.0, start: int = 0
    ) -> aiomqtt.Message:
        """The first message (from index ``start``) matching ``pred``; fails after ``timeout``."""
        async with asyncio.timeout(timeout), self._new:
            i = start
            while True:
                while i < len(self.messages):
                    if pred(self.messages[i]):
                        return self.messages[i]
                    i += 1
                await self._new.wait()

    async def topic(
        self, topic: str, timeout: float = 5.0, payload: bytes | None = None, start: int = 0
    ) -> aiomqtt.Message:
        return await self.wait_for(
            lambda m: m.topic.value == topic and (payload is None or m.payload == payload), timeout, start
        )

    async def barrier(self, timeout: float = 5.0) -> None:
        """Return once everything the broker queued for us before now has arrived.

        The broker sends a subscription's retained messages before it handles our
        later publish, so when our own marker comes back the burst is complete.
        """
        marker = uuid.uuid4().hex.encode()
        start = len(self.messages)
        await self.client.publish(self.barrier_topic, marker, qos=1)
        await self.topic(self.barrier_topic, timeout=timeout, payload=marker, start=start)

    def on(self, topic: str) -> list[Any]:
        return [json.loads(m.payload) for m in self.messages if m.topic.value == topic and m.payload]


@contextlib.asynccontextmanager
async def listen(
    url: str, *topics: str, protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5, **kw: Any
) -> AsyncIterator[Listener]:
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    async with aiomqtt.Client(host, int(port), protocol=protocol, **kw) as client:
        listener = Listener(client)
        for t in (*topics, listener.barrier_topic):
            await client.subscribe(t, qos=1)
        listener._task = asyncio.create_task(listener._pump(), name="test.mqtt.listener")
        try:
            yield listener
        finally:
            listener._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener._task


async def until(pred: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``pred`` (cheap, in-process state) until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)
