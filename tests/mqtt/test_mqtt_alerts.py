"""Alerts on MQTT: the stored alert once (never the raw request), acknowledged over cmd/, no names or notes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aiomqtt

from tests.mqtt.mqtt_helpers import Mosquitto, listen, make_config, running


async def test_alert_opened_and_changed_on_mqtt_without_names(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/console/{uuid.uuid4().hex}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, f"{root}/event/alert", f"{root}/event/alert_changed", reply_to) as sub,
    ):
        for _ in range(2):  # the same fault twice: one alert
            hall.service.device_health("p1", "printer", "ok")
            hall.service.device_health("p1", "printer", "error", "paper_out")

        # The hall's zone has a sensor that never reports: its climate_sensors_stale alert may come
        # first on a slow run, so the printer's alert is picked out by kind, and counted by kind.
        def printer_fault(m: aiomqtt.Message) -> bool:
            return m.topic.value == f"{root}/event/alert" and json.loads(m.payload)["alert"] == "device_fault"

        opened = json.loads((await sub.wait_for(printer_fault, 5.0)).payload)
        assert opened["alert"] == "device_fault" and opened["subject"] == "p1"
        assert isinstance(opened["id"], int) and opened["state"] == "open"
        await hall.bus.drain()
        await sub.barrier()
        faults = [a for a in sub.on(f"{root}/event/alert") if a["alert"] == "device_fault"]
        assert len(faults) == 1, "a raise request or a duplicate reached MQTT"

        request = {"by": "张主任", "note": "已补纸 13800138000", "reply_to": reply_to, "request_id": "r1"}
        await sub.client.publish(f"{root}/cmd/alert/{opened['id']}/ack", json.dumps(request).encode(), qos=1)
        reply = json.loads((await sub.topic(reply_to)).payload)
        assert reply["ok"] is True and reply["alert"]["state"] == "acknowledged"
        assert reply["alert"]["acked_by"] is None and reply["alert"]["ack_note"] is None  # names stay off the broker
        changed_msg = await sub.wait_for(
            lambda m: m.topic.value == f"{root}/event/alert_changed" and json.loads(m.payload)["id"] == opened["id"]
        )
        changed = json.loads(changed_msg.payload)
        assert (changed["id"], changed["state"], changed["change"]) == (opened["id"], "acknowledged", "acknowledged")
        assert "张主任" not in changed_msg.payload.decode() and "13800138000" not in changed_msg.payload.decode()
