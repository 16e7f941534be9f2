"""A real Mosquitto and a real hallctl daemon (hall id ``demo``, as in the examples) for the examples."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.core_helpers import REPO, Daemon
from tests.mqtt.mqtt_helpers import Mosquitto

EXAMPLES = REPO / "docs" / "integrations"
HALL = "demo"


@dataclasses.dataclass
class LiveExample:
    broker: Mosquitto
    daemon: Daemon
    guide: str

    def issue(self, category: str) -> str:
        r = httpx.post(
            f"{self.daemon.url}/api/v1/tickets",
            json={"category": category},
            headers={"Authorization": f"Bearer {self.guide}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        number: str = r.json()["number"]
        return number

    def window(self, number: int) -> dict[str, object]:
        r = httpx.get(
            f"{self.daemon.url}/api/v1/windows/{number}/queue",
            headers={"Authorization": f"Bearer {self.guide}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        state: dict[str, object] = r.json()["window"]
        return state


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveExample]:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    daemon = Daemon(
        tmp_path / "daemon",
        hall={"id": HALL, "name": "示范区政务服务中心"},
        mqtt={"url": broker.url, "protocol": "5", "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
    )
    daemon.data["mqtt"].pop("embedded_port", None)
    guide = asyncio.run(daemon.create_tokens({"guide": ("guide", ())}))["guide"]
    try:
        daemon.start()
        yield LiveExample(broker, daemon, guide)
    finally:
        daemon.stop()
        broker.stop()
