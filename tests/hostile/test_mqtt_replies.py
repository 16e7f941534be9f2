"""Issue 11, "MQTT 5 and replies", against a real daemon process and a real Mosquitto.

* a command whose reply topic is outside ``<root>/reply/<client>/`` is not executed and
  the daemon publishes nothing there (it once wrote into ``homeassistant/.../config``);
* a command published with retain is refused with ``retained_command`` and never runs,
  neither live nor from the broker's retained copy after the daemon reconnects; clearing
  it (empty retained payload) is silent;
* tickets issued over MQTT carry channel ``mqtt``; ``{"target": "25"}`` is refused; a
  setpoint set over MQTT survives a restart.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl.store import Store
from tests.core.core_helpers import Daemon
from tests.mqtt.mqtt_helpers import Listener, Mosquitto, listen


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def make_daemon(tmp_path: Path, broker: Mosquitto, hall_id: str) -> Daemon:
    return Daemon(
        tmp_path / "d",
        hall={"id": hall_id},
        mqtt={"url": broker.url, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        sensor=[{"id": "floor1", "source": "zigbee", "friendly_name": "hall_th_1"}],
        climate_zone=[{"id": "floor1", "sensors": ["floor1"], "mode": "auto", "target": 24.0}],
    )


def health(daemon: Daemon, token: str) -> dict[str, Any]:
    r = httpx.get(f"{daemon.url}/api/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    section: dict[str, Any] = r.json()["mqtt"]
    return section


async def ask(sub: Listener, topic: str, body: dict[str, Any], reply_to: str) -> dict[str, Any]:
    rid = uuid.uuid4().hex
    start = len(sub.messages)
    await sub.client.publish(topic, json.dumps({**body, "reply_to": reply_to, "request_id": rid}), qos=1)
    msg = await sub.wait_for(
        lambda m: m.topic.value == reply_to and json.loads(m.payload).get("request_id") == rid, timeout=10, start=start
    )
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply


def v5(response_topic: str, correlation: bytes = b"c") -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


async def test_a_reply_topic_outside_the_namespace_is_refused_and_not_executed(
    broker: Mosquitto, tmp_path: Path
) -> None:
    hall_id = "r" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    daemon = make_daemon(tmp_path, broker, hall_id)
    tokens = await daemon.create_tokens({"admin": ("admin", ())})
    daemon.start()
    try:
        evil = "homeassistant/sensor/evil/config"
        mine = f"{root}/reply/kiosk-k1/r"
        cmd = f"{root}/cmd/ticket/issue"
        async with listen(broker.url, mine, evil, "plain/#", f"{root}/status") as sub:
            refused_topics = [
                evil,
                "plain/replies",
                f"{root}/status",
                f"{root}/reply",
                f"{root}/reply/+/x",
                f"{root}/reply/bad client/x",
                f"{root}/reply/k//x",
                f"{root}/reply/k/" + "x" * 300,
                "$SYS/x",
            ]
            for topic in refused_topics:
                body = {"category": "A", "reply_to": topic, "request_id": "x"}
                await sub.client.publish(cmd, json.dumps(body), qos=1)
                await sub.client.publish(cmd, json.dumps({"category": "A"}), qos=1, properties=v5(topic))
            good = await ask(sub, cmd, {"category": "A"}, mine)
            # Commands are handled in order: had any of the refused ones run, this would not be A001.
            assert good["ok"] is True and good["ticket"]["number"] == "A001", good
            await sub.barrier()
            assert not [m for m in sub.messages if m.topic.value in (evil, "plain/replies")]
            assert [m.payload for m in sub.messages if m.topic.value == f"{root}/status"] == [b"online"]
        h = health(daemon, tokens["admin"])
        assert h["refused"] == 2 * len(refused_topics), h
        assert h["commands"] == 2 * len(refused_topics) + 1, h
    finally:
        daemon.stop()
    assert "not executed: reply topic" in daemon.log.read_text()


async def test_a_retained_command_never_runs(broker: Mosquitto, tmp_path: Path) -> None:
    hall_id = "r" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    daemon = make_daemon(tmp_path, broker, hall_id)
    tokens = await daemon.create_tokens({"admin": ("admin", ())})
    cmd = f"{root}/cmd/ticket/issue"
    call = f"{root}/cmd/window/1/call_next"
    mine = f"{root}/reply/kiosk-k1/r"
    daemon.start()
    try:
        async with listen(broker.url, mine) as sub:
            # MQTT 5 response topic, and a 3.1.1-style reply_to: both published with retain.
            start = len(sub.messages)
            await sub.client.publish(cmd, json.dumps({"category": "A"}), qos=1, retain=True, properties=v5(mine))
            err = await sub.wait_for(lambda m: m.topic.value == mine, timeout=10, start=start)
            assert json.loads(err.payload)["error"]["code"] == "retained_command"
            assert err.properties is not None and getattr(err.properties, "CorrelationData", None) == b"c"
            body = {"category": "B", "reply_to": mine, "request_id": "ret-1"}
            await sub.client.publish(call, json.dumps(body), qos=1, retain=True)
            err = await sub.wait_for(lambda m: b"ret-1" in m.payload, timeout=10)
            assert json.loads(err.payload)["error"]["code"] == "retained_command"
            first = await ask(sub, cmd, {"category": "A"}, mine)
            assert first["ticket"]["number"] == "A001", first  # the retained issue did not take A001
            assert health(daemon, tokens["admin"])["refused"] == 2
        # A restart reconnects and resubscribes: the broker still holds both retained commands.
        daemon.stop()
        daemon.start()
        async with listen(broker.url, mine) as sub:
            second = await ask(sub, cmd, {"category": "A"}, mine)
            assert second["ticket"]["number"] == "A002", second
            called = await ask(sub, call, {}, mine)
            assert called["ticket"]["number"] == "A001", called  # nothing called before: the retained call never ran
            # Clearing the retained commands is silent.
            await sub.client.publish(cmd, b"", qos=1, retain=True)
            await sub.client.publish(call, b"", qos=1, retain=True)
            await ask(sub, f"{root}/cmd/window/1/finish", {}, mine)
            h = health(daemon, tokens["admin"])
            assert h["refused"] == 0 and h["failed"] == 0, h
    finally:
        daemon.stop()
    log = daemon.log.read_text()
    assert "invalid_arguments" not in log
    assert log.count("refused a retained command") == 2  # once per topic, in the first run


async def test_mqtt_tickets_channel_strict_numbers_and_setpoint_across_restart(
    broker: Mosquitto, tmp_path: Path
) -> None:
    hall_id = "r" + uuid.uuid4().hex[:10]
    root = f"hallctl/{hall_id}"
    daemon = make_daemon(tmp_path, broker, hall_id)
    mine = f"{root}/reply/ha/1"
    state = f"{root}/climate/floor1/state"
    daemon.start()
    try:
        async with listen(broker.url, mine) as sub:
            issued = await ask(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, mine)
            assert issued["ticket"]["channel"] == "mqtt", issued
            for body in ({"target": "25"}, {"target": True}, {"mode": "cool", "target": "25.5"}):
                bad = await ask(sub, f"{root}/cmd/climate/floor1/set", body, mine)
                assert bad["ok"] is False and bad["error"]["code"] == "invalid_arguments", (body, bad)
            ok = await ask(sub, f"{root}/cmd/climate/floor1/set", {"mode": "cool", "target": 26.5}, mine)
            assert ok["climate"]["target"] == 26.5 and ok["climate"]["mode"] == "cool"
            ok = await ask(sub, f"{root}/cmd/climate/floor1/set", {"target": 26}, mine)  # an integer is a number
            assert ok["ok"] is True and ok["climate"]["target"] == 26
        daemon.stop()
        daemon.start()
        async with listen(broker.url, state) as sub:
            msg = await sub.wait_for(lambda m: m.topic.value == state and bool(m.payload), timeout=10)
            climate = json.loads(msg.payload)
            assert (climate["mode"], climate["target"]) == ("cool", 26), climate
    finally:
        daemon.stop()
    store = Store(daemon.data["store"]["path"])
    await store.open()
    try:
        ticket = await store.ticket(issued["ticket"]["id"])
        assert ticket is not None and ticket.channel == "mqtt"
    finally:
        await store.close()
