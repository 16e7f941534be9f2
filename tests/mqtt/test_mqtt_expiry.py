"""MQTT 5 message expiry on commands: a command that waited in the daemon past its expiry is not executed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl import config
from hallctl.daemon import Hall
from tests.mqtt.mqtt_helpers import Mosquitto, hall_raw, listen


async def test_a_command_whose_expiry_ran_out_in_the_daemon_is_not_executed(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/t/1"
    hall = Hall(config.parse(hall_raw(tmp_path, hall_id, mosquitto.url)))
    busy = asyncio.Event()
    release = asyncio.Event()

    async def slow(topic: str, payload: bytes) -> None:  # holds the daemon's receive loop
        busy.set()
        await release.wait()

    hall.ctx.subscribe_mqtt("test/slow", slow)
    await hall.start()
    try:
        async with listen(mosquitto.url, reply_to) as sub:
            await sub.client.publish("test/slow", b"{}", qos=1)
            async with asyncio.timeout(5):
                await busy.wait()
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = reply_to
            props.CorrelationData = b"exp"
            props.MessageExpiryInterval = 1
            await sub.client.publish(f"{root}/cmd/ticket/issue", json.dumps({"category": "A"}), qos=1, properties=props)
            await sub.barrier()  # the broker has delivered it to the daemon's queue by now
            await asyncio.sleep(1.3)  # the fault itself: the command outlives its expiry while it waits
            release.set()
            msg = await sub.topic(reply_to, timeout=5)
            assert json.loads(msg.payload)["error"]["code"] == "command_expired"
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = reply_to
            props.CorrelationData = b"ok"
            props.MessageExpiryInterval = 60
            start = len(sub.messages)
            await sub.client.publish(f"{root}/cmd/ticket/issue", json.dumps({"category": "A"}), qos=1, properties=props)
            msg = await sub.topic(reply_to, timeout=5, start=start)
            assert json.loads(msg.payload)["ticket"]["number"] == "A001"  # the expired one never ran
        assert hall.health_extra()["mqtt"]["expired"] == 1
    finally:
        release.set()
        await hall.stop()
