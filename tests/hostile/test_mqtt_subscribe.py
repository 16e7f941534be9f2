"""Issue 10 item 6: a bad zigbee friendly name is refused by the config check, and a refused
subscription is logged, shown in health and retried; it never silently kills the MQTT session."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from hallctl import config
from hallctl.daemon import Hall
from hallctl.mqtt.bridge import MqttBridge
from tests.core.core_helpers import REPO, config_dict, to_toml
from tests.mqtt.mqtt_helpers import Mosquitto, hall_raw, listen


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("hall/#", "wildcard"),
        ("th+1", "wildcard"),
        ("th\x001", "NUL"),
        ("floor1//th", "empty topic levels"),
        ("/th", "empty topic levels"),
        ("", "empty"),
    ],
)
def test_check_config_refuses_friendly_names_that_break_topic_filters(tmp_path: Path, name: str, reason: str) -> None:
    data = config_dict(sensor=[{"id": "floor1", "source": "zigbee", "friendly_name": name}])
    path = tmp_path / "hall.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "hallctl.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "sensor[0].friendly_name" in out and reason in out, out


async def test_refused_subscription_shows_in_health_is_retried_and_commands_still_served(
    broker: Mosquitto, tmp_path: Path
) -> None:
    hall_id = "s" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    raw = hall_raw(tmp_path, hall_id, broker.url, reconnect_min_s=0.05, reconnect_max_s=0.2)
    hall = Hall(config.parse(raw))
    bad = "zigbee2mqtt/injected#filter"  # config validation refuses such names; inject it as a component would

    async def ignore(topic: str, payload: bytes) -> None:
        return None

    hall.ctx.subscribe_mqtt(bad, ignore)
    await hall.start()
    try:
        mqtt = hall.health_extra()["mqtt"]
        assert mqtt["connects"] == 1, mqtt
        assert mqtt["last_error"] is not None and f"subscribe refused: {bad}" in mqtt["last_error"], mqtt
        reply_to = f"{root}/reply/t/1"
        async with listen(broker.url, reply_to) as client:
            await client.client.publish(
                f"{root}/cmd/ticket/issue", json.dumps({"category": "A", "reply_to": reply_to}), qos=1
            )
            msg = await client.topic(reply_to, timeout=5)
            assert json.loads(msg.payload)["ticket"]["number"] == "A001"
        # Retried with backoff (0.05-0.2 s here): the failure count grows while the session stays the same one.
        for _ in range(250):  # bounded poll (5 s) of an observable counter
            if hall.health_extra()["mqtt"]["subscribe_failures"] >= 3:
                break
            await asyncio.sleep(0.02)
        mqtt = hall.health_extra()["mqtt"]
        assert mqtt["subscribe_failures"] >= 3, mqtt
        assert mqtt["connects"] == 1 and mqtt["connected"] is True, mqtt
        assert bad in mqtt["unsubscribed"], mqtt
    finally:
        await hall.stop()


class RefusingClient:
    """Answers SUBACK like a broker whose ACL plugin refuses one filter (MQTT 5 reason 0x87)."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.asked: list[str] = []

    async def subscribe(self, topic: str, qos: int = 0) -> list[ReasonCode]:
        self.asked.append(topic)
        code = 0x87 if topic == self.refuse else 0x01
        return [ReasonCode(PacketTypes.SUBACK, identifier=code)]


async def test_a_suback_failure_code_counts_as_refused(tmp_path: Path) -> None:
    cfg = config.parse(hall_raw(tmp_path, "suback", "mqtt://127.0.0.1:1"))
    bridge = MqttBridge(Hall(cfg).ctx)
    client = RefusingClient("zigbee2mqtt/hall_th_1")
    refused = await bridge._subscribe(client, ["hallctl/suback/cmd/#", "zigbee2mqtt/hall_th_1"])  # type: ignore[arg-type]
    assert refused == ["zigbee2mqtt/hall_th_1"] and client.asked == ["hallctl/suback/cmd/#", "zigbee2mqtt/hall_th_1"]
    health = bridge.health()
    assert health["subscribe_failures"] == 1
    assert health["last_error"].startswith("subscribe refused: zigbee2mqtt/hall_th_1 (broker answered Not authorized")
