"""The daemon as a separate process: its last will, and zigbee2mqtt sensors feeding the hall."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt

from tests.mqtt.mqtt_helpers import REPO, Mosquitto, listen, make_config, running, tool


async def test_last_will_offline_after_kill_9(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """kill -9 of the daemon: the broker publishes the retained `offline` will on the status topic."""
    toml = tmp_path / "hall.toml"
    toml.write_text(
        f"""
[hall]
id = "{hall_id}"
name = "测试大厅"
[store]
path = "{tmp_path / "hall.db"}"
[api]
port = 0
[mqtt]
url = "{mosquitto.url}"
keepalive = 5
[[category]]
prefix = "A"
name = "便民服务"
[[window]]
number = 1
categories = ["A"]
""",
        encoding="utf-8",
    )
    status = f"hallctl/{hall_id}/status"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    async with listen(mosquitto.url, status) as sub:
        with (tmp_path / "daemon.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hallctl.cli",
                "-c",
                str(toml),
                "run",
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            await sub.topic(status, payload=b"online", timeout=20)
            proc.send_signal(signal.SIGKILL)
            async with asyncio.timeout(5):
                await proc.wait()
            await sub.topic(status, payload=b"offline", timeout=10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    async with listen(mosquitto.url, status) as late:
        msg = await late.topic(status)
        assert msg.payload == b"offline" and msg.retain


async def test_zigbee_sensor_reading_becomes_sensor_and_climate_state(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """A zigbee2mqtt reading updates the hall's sensor and climate zone; availability becomes device state."""
    root = f"hallctl/{hall_id}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, f"{root}/sensor/#", f"{root}/climate/#", f"{root}/device/#") as sub,
    ):
        await sub.client.publish("zigbee2mqtt/hall_th_1", b"temperature: hot", qos=1)  # garbage: logged, skipped
        await sub.client.publish(
            "zigbee2mqtt/hall_th_1", json.dumps({"temperature": 29.5, "humidity": 61.0, "battery": 90}), qos=1
        )
        reading = await sub.topic(f"{root}/sensor/floor1/state")
        assert json.loads(reading.payload)["temperature"] == 29.5
        climate = await sub.wait_for(
            lambda m: m.topic.value == f"{root}/climate/floor1/state" and json.loads(m.payload)["current"] == 29.5
        )
        assert json.loads(climate.payload)["humidity"] == 61.0
        await sub.client.publish("zigbee2mqtt/hall_th_1/availability", b'{"state":"offline"}', qos=1)
        dev = await sub.topic(f"{root}/device/zigbee-floor1/state")
        assert json.loads(dev.payload)["state"] == "offline"
        assert hall.service.sensors["floor1"].humidity == 61.0


async def test_mosquitto_sub_reads_retained_state_from_the_embedded_broker(tmp_path: Path, hall_id: str) -> None:
    """With no broker configured, the embedded one serves mosquitto_sub the status and the present queue."""
    async with running(make_config(tmp_path, hall_id, None)) as hall:
        await hall.service.issue("A")
        health = hall.health_extra()["mqtt"]
        assert health["embedded"] is True and health["url"].startswith("mqtt://127.0.0.1:")
        port = health["url"].rsplit(":", 1)[1]
        async with listen(
            health["url"], f"hallctl/{hall_id}/queue/A/state", protocol=aiomqtt.ProtocolVersion.V311
        ) as sub:
            await sub.wait_for(lambda m: json.loads(m.payload)["waiting"] == 1)
        proc = await asyncio.create_subprocess_exec(
            tool("mosquitto_sub"),
            "-V",
            "mqttv311",
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-t",
            f"hallctl/{hall_id}/status",
            "-t",
            f"hallctl/{hall_id}/queue/A/state",
            "-C",
            "2",
            "-W",
            "10",
            "-v",
            stdout=subprocess.PIPE,
        )
        out, _ = await proc.communicate()
    lines = dict(line.split(" ", 1) for line in out.decode().splitlines())
    assert lines[f"hallctl/{hall_id}/status"] == "online"
    assert json.loads(lines[f"hallctl/{hall_id}/queue/A/state"])["last_issued"] == "A001"
