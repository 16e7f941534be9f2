"""The bridge's client (:class:`hallctl.mqtt.pipeline.PipelinedClient`) against a real Mosquitto.

The bridge counts an event delivered only when ``on_acked`` reports its message id, and
moves it to the outbox when ``publish_nowait`` refuses it; aiomqtt's own awaited publishes
(replies, retained state) share the same client and the same PUBACK callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import aiomqtt
import pytest

from hallctl.mqtt.pipeline import PipelinedClient
from tests.mqtt.mqtt_helpers import Mosquitto, listen, until

VERSIONS = [aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311]


@pytest.mark.parametrize("protocol", VERSIONS, ids=["v5", "v311"])
async def test_each_publish_is_reported_acknowledged_in_order_beside_awaited_publishes(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    topic = f"test/{hall_id}/event"
    acked: list[int] = []
    async with (
        listen(mosquitto.url, topic) as sub,
        PipelinedClient("127.0.0.1", mosquitto.port, protocol=protocol, on_acked=acked.append) as client,
    ):
        sent: list[int] = []
        for i in range(60):  # three times paho's in-flight window: the rest wait in paho's queue
            sent.append(client.publish_nowait(topic, json.dumps({"n": i}), 1, False))
            if i == 30:  # an awaited publish in the middle completes on its own PUBACK
                await client.publish(f"{topic}/reply", b"r", qos=1)
        await until(lambda: len(acked) == 60, what="60 PUBACKs reported", timeout=10)
        assert acked == sent and len(set(sent)) == 60
        await sub.wait_for(lambda m: m.topic.value == topic and json.loads(m.payload)["n"] == 59)
        assert [json.loads(m.payload)["n"] for m in sub.messages if m.topic.value == topic] == list(range(60))


async def test_a_publish_after_the_link_is_gone_is_refused_not_queued(tmp_path: Path) -> None:
    """paho would keep a refused QoS 1 message for a reconnect this client never makes: it must raise instead."""
    broker = Mosquitto(tmp_path)
    broker.start()
    acked: list[int] = []
    try:
        with contextlib.suppress(aiomqtt.MqttError):  # leaving a client whose broker is gone
            async with PipelinedClient("127.0.0.1", broker.port, on_acked=acked.append) as client:
                client.publish_nowait("test/x", b"1", 1, False)
                await until(lambda: acked == [1], what="the first PUBACK", timeout=5)
                broker.stop()
                refused: list[aiomqtt.MqttError] = []

                def refuses() -> bool:
                    try:
                        client.publish_nowait("test/x", b"2", 1, False)
                    except aiomqtt.MqttError as exc:
                        refused.append(exc)
                    return bool(refused)

                await until(refuses, what="a publish refused once the link is gone", timeout=10)
                assert isinstance(refused[0], aiomqtt.MqttCodeError)
                with pytest.raises(aiomqtt.MqttError):  # the client's own news of the loss, read as the bridge reads it
                    async with asyncio.timeout(5):
                        async for _ in client.messages:
                            pass
    finally:
        broker.stop()
    assert acked == [1]
