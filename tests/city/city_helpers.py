"""A small city for the tests: halls as daemon processes, each with its own Mosquitto bridged to a
central Mosquitto, and ``hallctl central`` as a process on a test PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.core.core_helpers import Daemon, free_port, spawn_until_healthy, to_toml
from tests.mqtt.mqtt_helpers import Mosquitto
from tests.mqtt.test_mqtt_bridge import bridge_section


class CityHall:
    """One hall: its broker (persistent, bridged to the centre) and its daemon (city feed on)."""

    def __init__(self, workdir: Path, hall_id: str, central_port: int, broker_extra: str = "") -> None:
        self.id = hall_id
        (workdir / "broker").mkdir(parents=True)
        self.broker = Mosquitto(
            workdir / "broker",
            # The bridge retries every second (the shipped 2..60 s backoff would stretch the test).
            extra=broker_extra + bridge_section(hall_id, central_port) + "restart_timeout 1\n",
            persistence=True,
        )
        self.daemon = Daemon(
            workdir / "daemon",
            hall={"id": hall_id, "name": f"{hall_id}政务服务中心"},
            mqtt={"url": self.broker.url, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "discovery": False},
            city={"feed": True, "cursor_save_s": 0.5},
        )
        self.admin = ""

    async def start(self) -> None:
        self.broker.start()
        if not self.admin:
            self.admin = (await self.daemon.create_tokens({"admin": ("admin", ())}))["admin"]
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()
        self.broker.stop()

    def issue(self, n: int, category: str = "A") -> None:
        h = {"Authorization": f"Bearer {self.admin}"}
        with httpx.Client(base_url=self.daemon.url, headers=h, timeout=10) as c:
            for _ in range(n):
                c.post("/api/v1/tickets", json={"category": category}).raise_for_status()

    def call_next(self, window: int = 1) -> None:
        h = {"Authorization": f"Bearer {self.admin}"}
        with httpx.Client(base_url=self.daemon.url, headers=h, timeout=10) as c:
            c.post(f"/api/v1/windows/{window}/call-next").raise_for_status()

    def health(self) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {self.admin}"}
        body: dict[str, Any] = httpx.get(f"{self.daemon.url}/api/v1/health", headers=h, timeout=10).json()
        return body

    def log_seqs(self) -> list[int]:
        """The hall's own event log, read beside the running daemon (read-only)."""
        db = self.daemon.data["store"]["path"]
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [r[0] for r in conn.execute("SELECT seq FROM event_log ORDER BY seq")]


class Central:
    """``hallctl central`` as a process."""

    def __init__(self, workdir: Path, mqtt_url: str, dsn: str, **over: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.data: dict[str, Any] = {
            "central": {"id": "t1"},
            "mqtt": {"url": mqtt_url, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "keepalive": 5},
            "postgres": {"dsn": dsn, "flush_ms": 20},
            "gaps": {"scan_s": 0.3, "first_retry_s": 0.5, "max_retry_s": 2.0, "tail_probe_s": 1.0},
            "http": {"port": self.port, "figures_s": 0.2},
            **over,
        }
        self.file = workdir / "central.toml"
        self.log = workdir / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.file.write_text(to_toml(self.data), encoding="utf-8")
        self.proc = spawn_until_healthy(
            ["-v", "central", str(self.file)], self.log, self.url, timeout, "central", self.stop
        )

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/api/v1/health", timeout=5).json()
        return body

    def city(self) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1/city", timeout=10)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
