"""Alerts on MQTT: the stored alert once (never the raw request), acknowledged over cmd/, no names or notes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

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
        opened = json.loads((await sub.topic(f"{root}/event/alert")).payload)
        assert opened["alert"] == "device_fault" and opened["subject"] == "p1"
        assert isinstance(opened["id"], int) and opened["state"] == "open"
        await hall.bus.drain()
        await sub.barrier()
        assert len(sub.on(f"{root}/event/alert")) == 1, "a raise request or a duplicate reached MQTT"

        request = {"by": "张主任", "note": "已补纸 13800138000", "reply_to": reply_to, "request_id": "r1"}
        await sub.client.publish(f"{root}/cmd/alert/{opened['id']}/ack", json.dumps(request).encode(), qos=1)
        reply = json.loads((await sub.topic(reply_to)).payload)
        assert reply["ok"] is True and reply["alert"]["state"] == "acknowledged"
        assert reply["alert"]["acked_by"] is None and reply["alert"]["ack_note"] is None  # names stay off the broker
        changed_msg = await sub.topic(f"{root}/event/alert_changed")
        changed = json.loads(changed_msg.payload)
        assert (changed["id"], changed["state"], changed["change"]) == (opened["id"], "acknowledged", "acknowledged")
        assert "张主任" not in changed_msg.payload.decode() and "13800138000" not in changed_msg.payload.decode()
