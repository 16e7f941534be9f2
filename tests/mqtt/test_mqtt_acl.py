"""The shipped ACL (config/mosquitto/acl) on a real Mosquitto with passwords, with the real daemon."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.mqtt_helpers import MOSQUITTO_CONF_DIR, Listener, Mosquitto, listen, make_config, running, tool

USERS = ("hallctl", "kiosk", "screen", "hvac", "homeassistant")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    work = tmp_path_factory.mktemp("acl-broker")
    passwd = work / "passwd"
    for i, user in enumerate(USERS):
        args = [tool("mosquitto_passwd"), *(["-c"] if i == 0 else []), "-b", str(passwd), user, f"pw-{user}"]
        subprocess.run(args, check=True, capture_output=True)
    broker = Mosquitto(work, anonymous=False, extra=f"password_file {passwd}\nacl_file {MOSQUITTO_CONF_DIR / 'acl'}\n")
    broker.start()
    yield broker
    broker.stop()


def creds(user: str, client_id: str | None = None) -> dict[str, Any]:
    return {"username": user, "password": f"pw-{user}", "identifier": client_id or f"{user}-{uuid.uuid4().hex[:6]}"}


async def issue(kiosk: Listener, root: str, reply_to: str) -> dict[str, Any]:
    rid = uuid.uuid4().hex
    start = len(kiosk.messages)
    await kiosk.client.publish(
        f"{root}/cmd/ticket/issue", json.dumps({"category": "A", "reply_to": reply_to, "request_id": rid}), qos=1
    )
    msg = await kiosk.wait_for(
        lambda m: m.topic.value == reply_to and json.loads(m.payload).get("request_id") == rid, start=start
    )
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply


async def test_anonymous_and_wrong_password_are_refused(secured: Mosquitto) -> None:
    """The hall broker of the example config admits no anonymous client and no wrong password."""
    import aiomqtt

    attempts: tuple[dict[str, Any], ...] = ({}, {"username": "kiosk", "password": "wrong"})
    for kw in attempts:
        with pytest.raises(aiomqtt.MqttError):
            async with listen(secured.url, **kw):
                pass


async def test_kiosk_screen_and_hvac_can_do_only_their_part(secured: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """Kiosks only issue, screens only read, HVAC only its climate topics; the daemon never sees the rest."""
    root = f"hallctl/{hall_id}"
    url = secured.url.replace("mqtt://", "mqtt://hallctl:pw-hallctl@")
    kiosk_reply = f"{root}/reply/kiosk-k1/r"
    async with (
        running(make_config(tmp_path, hall_id, url)) as hall,
        listen(secured.url, f"{root}/#", **creds("hallctl", "observer")) as observer,
        listen(secured.url, f"{root}/#", **creds("kiosk", "kiosk-k1")) as kiosk,
        listen(secured.url, f"{root}/#", **creds("screen")) as screen,
        listen(
            secured.url, f"{root}/climate/#", f"{root}/event/#", f"{root}/reply/#", **creds("hvac", "hvac-1")
        ) as hvac,
    ):
        # The kiosk issues and gets its own reply.
        first = await issue(kiosk, root, kiosk_reply)
        assert first["ok"] is True and first["ticket"]["number"] == "A001"
        await observer.topic(f"{root}/event/ticket_issued")
        # Refused publishes: kiosk calls a window, screen issues, hvac issues. Each waits for its PUBACK,
        # so the broker handled it before the kiosk's next (allowed) command: a ticket number proves it.
        await kiosk.client.publish(f"{root}/cmd/window/1/call_next", b"{}", qos=1)
        await screen.client.publish(f"{root}/cmd/ticket/issue", json.dumps({"category": "A"}), qos=1)
        await hvac.client.publish(f"{root}/cmd/ticket/issue", json.dumps({"category": "A"}), qos=1)
        await screen.client.publish(f"{root}/cmd/climate/floor1/set", json.dumps({"mode": "off"}), qos=1)
        second = await issue(kiosk, root, kiosk_reply)
        assert second["ticket"]["number"] == "A002"
        assert hall.service._q.window(1).current is None
        assert hall.climate.states["floor1"].mode == "auto"
        assert not [m for m in observer.messages if m.topic.value.startswith(f"{root}/cmd/window")]
        # The kiosk read nothing but its replies, although it subscribed to the whole hall.
        assert {m.topic.value for m in kiosk.messages} <= {kiosk_reply, kiosk.barrier_topic}
        # The screen reads state and events.
        await screen.topic(f"{root}/queue/A/state")
        await screen.topic(f"{root}/event/ticket_issued")
        # HVAC sets its zone, reads the climate state, and saw no ticket events on the way.
        await hvac.client.publish(f"{root}/cmd/climate/floor1/set", json.dumps({"mode": "cool", "target": 24.0}), qos=1)
        await hvac.wait_for(
            lambda m: m.topic.value == f"{root}/climate/floor1/state" and json.loads(m.payload)["mode"] == "cool"
        )
        assert hall.climate.states["floor1"].target == 24.0
        assert not [m for m in hvac.messages if "/event/" in m.topic.value or "/reply/" in m.topic.value]
