"""Issue 10 item 5: one MQTT message must never end the daemon's MQTT session.

A real daemon process behind a real Mosquitto with the shipped ACL; the kiosk
publishes as the ``kiosk`` user. Poison messages (deep nesting, a 5,000-digit
integer, invalid UTF-8, 1 MB) are interleaved with 150 issue commands: every
command is answered and the daemon never reconnects.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hallctl import config
from hallctl.daemon import Hall
from tests.core.core_helpers import Daemon
from tests.mqtt.mqtt_helpers import MOSQUITTO_CONF_DIR, Mosquitto, hall_raw, listen, tool

USERS = ("hallctl", "kiosk")
POISON: tuple[bytes, ...] = (
    b"[" * 100_000,
    b'{"category": "A", "n": ' + b"9" * 5000 + b"}",
    b'{"category": "\xff\xfe\xfa"}',
    b'{"category": "A", "pad": "' + b"x" * 1_000_000 + b'"}',
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Mosquitto]:
    passwd = tmp_path / "passwd"
    for i, user in enumerate(USERS):
        args = [tool("mosquitto_passwd"), *(["-c"] if i == 0 else []), "-b", str(passwd), user, f"pw-{user}"]
        subprocess.run(args, check=True, capture_output=True)
    broker = Mosquitto(
        tmp_path, anonymous=False, extra=f"password_file {passwd}\nacl_file {MOSQUITTO_CONF_DIR / 'acl'}\n"
    )
    broker.start()
    yield broker
    broker.stop()


def mqtt_health(daemon: Daemon, token: str) -> dict[str, Any]:
    r = httpx.get(f"{daemon.url}/api/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    section: dict[str, Any] = r.json()["mqtt"]
    return section


async def test_poison_messages_never_end_the_session(secured: Mosquitto, tmp_path: Path) -> None:
    hall_id = "p" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    daemon = Daemon(
        tmp_path / "d",
        hall={"id": hall_id},
        mqtt={"url": secured.url.replace("mqtt://", "mqtt://hallctl:pw-hallctl@"), "reconnect_min_s": 0.1},
        kiosk=[{"id": "k1", "categories": ["A"]}],
    )
    tokens = await daemon.create_tokens({"admin": ("admin", ())})
    daemon.start()
    try:
        assert mqtt_health(daemon, tokens["admin"])["connects"] == 1
        reply_to = f"{root}/reply/kiosk-k1/r"
        async with listen(secured.url, reply_to, username="kiosk", password="pw-kiosk", identifier="kiosk-k1") as kiosk:
            ids: list[str] = []
            for i in range(150):
                if i % 10 == 5:
                    await kiosk.client.publish(f"{root}/cmd/ticket/issue", POISON[(i // 10) % len(POISON)], qos=1)
                rid = f"r{i}"
                ids.append(rid)
                body = {"category": "A", "reply_to": reply_to, "request_id": rid}
                await kiosk.client.publish(f"{root}/cmd/ticket/issue", json.dumps(body), qos=1)
            # A poison message that names a reply topic (MQTT 5 response topic) gets an error reply.
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = reply_to
            await kiosk.client.publish(f"{root}/cmd/ticket/issue", POISON[0], qos=1, properties=props)
            err = await kiosk.wait_for(
                lambda m: m.topic.value == reply_to and json.loads(m.payload).get("ok") is False, timeout=15
            )
            assert json.loads(err.payload)["error"]["code"] in ("malformed_json", "payload_too_large")
            await kiosk.wait_for(
                lambda m: m.topic.value == reply_to and json.loads(m.payload).get("request_id") == ids[-1], timeout=15
            )
            answered = {json.loads(m.payload).get("request_id") for m in kiosk.messages if m.topic.value == reply_to}
            assert set(ids) <= answered, f"unanswered: {sorted(set(ids) - answered)[:10]}"
            numbers = [
                json.loads(m.payload)["ticket"]["number"]
                for m in kiosk.messages
                if m.topic.value == reply_to and json.loads(m.payload).get("ok")
            ]
            assert len(numbers) == len(set(numbers)) == 150
        health = mqtt_health(daemon, tokens["admin"])
        assert health["connects"] == 1, health  # never reconnected
        assert health["connected"] is True
        assert health["refused"] >= 16, health
        assert health["failed"] == 0, health
    finally:
        daemon.stop()


async def test_a_handler_that_crashes_costs_one_message_not_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    hall_id = "c" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    hall = Hall(config.parse(hall_raw(tmp_path, hall_id, broker.url)))

    async def crash(topic: str, payload: bytes) -> None:
        raise RuntimeError("a bug in one component's handler")

    hall.ctx.subscribe_mqtt("test/crash", crash)
    await hall.start()
    try:
        reply_to = f"{root}/reply/t/1"
        async with listen(broker.url, reply_to) as client:
            for _ in range(3):
                await client.client.publish("test/crash", b"{}", qos=1)
            await client.client.publish(
                f"{root}/cmd/ticket/issue", json.dumps({"category": "A", "reply_to": reply_to}), qos=1
            )
            msg = await client.topic(reply_to, timeout=5)
            assert json.loads(msg.payload)["ticket"]["number"] == "A001"
        mqtt = hall.health_extra()["mqtt"]
        assert mqtt["failed"] == 3 and mqtt["connects"] == 1 and mqtt["connected"] is True, mqtt
        assert "handling a message on test/crash failed" in caplog.text and "RuntimeError" in caplog.text
    finally:
        await hall.stop()
        broker.stop()
