"""Two Mosquitto instances bridged with the shipped bridge.conf topic rules: a hall seen from the centre."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aiomqtt

from tests.mqtt.mqtt_helpers import MOSQUITTO_CONF_DIR, Mosquitto, listen, make_config, running

KEPT = ("topic ", "try_private", "bridge_protocol_version", "notifications", "notification_topic", "cleansession")


def bridge_section(hall_id: str, central_port: int) -> str:
    """The shipped example with our hall id and the local central broker instead of TLS and a password."""
    lines = [ln for ln in (MOSQUITTO_CONF_DIR / "bridge.conf").read_text().splitlines() if ln.startswith(KEPT)]
    assert any(ln.startswith("topic ") for ln in lines)
    body = "\n".join(ln.replace("xicheng", hall_id) for ln in lines)
    return f"connection central\naddress 127.0.0.1:{central_port}\nremote_clientid bridge-{hall_id}\n{body}\n"


async def test_hall_events_reach_the_central_broker_and_commands_come_back(tmp_path: Path, hall_id: str) -> None:
    """The city view on the central broker sees the hall's status and events, and its commands get replies."""
    (tmp_path / "central").mkdir()
    (tmp_path / "hall").mkdir()
    central = Mosquitto(tmp_path / "central")
    central.start()
    hall_broker = Mosquitto(tmp_path / "hall", extra=bridge_section(hall_id, central.port))
    root = f"hallctl/{hall_id}"
    try:
        async with listen(
            central.url, "hallctl/+/status", "hallctl/+/event/#", f"{root}/bridge/state", f"{root}/reply/#"
        ) as city:
            hall_broker.start()
            await city.topic(f"{root}/bridge/state", payload=b"1", timeout=10)
            async with running(make_config(tmp_path, hall_id, hall_broker.url)) as hall:
                await city.topic(f"{root}/status", payload=b"online")
                await hall.service.issue("A")
                await hall.service.call_next(1)
                called = await city.topic(f"{root}/event/ticket_called")
                assert json.loads(called.payload)["announcement"] == "请A001号到1号窗口办理"
                for expected in ("B001", "B002"):  # a command looping over the bridge would skip a number
                    rid = uuid.uuid4().hex
                    start = len(city.messages)
                    await city.client.publish(
                        f"{root}/cmd/ticket/issue",
                        json.dumps({"category": "B", "reply_to": f"{root}/reply/city", "request_id": rid}),
                        qos=1,
                    )
                    reply = await city.topic(f"{root}/reply/city", start=start)
                    assert json.loads(reply.payload)["ticket"]["number"] == expected

                    def issued(m: aiomqtt.Message, n: str = expected) -> bool:
                        return bool(
                            m.topic.value == f"{root}/event/ticket_issued" and json.loads(m.payload)["number"] == n
                        )

                    await city.wait_for(issued)
                assert sorted(t.number for t in hall.service._q.tickets.values()) == ["A001", "B001", "B002"]
    finally:
        hall_broker.stop()
        central.stop()
