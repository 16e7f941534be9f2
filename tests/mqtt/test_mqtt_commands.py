"""Commands over MQTT: both reply styles, idempotency, and errors that never crash the daemon."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl import engine
from hallctl.privacy import mask_id
from tests.mqtt.mqtt_helpers import Listener, Mosquitto, listen, make_config, running

V311 = aiomqtt.ProtocolVersion.V311


async def ask_v311(
    sub: Listener, topic: str, body: dict[str, Any] | bytes, reply_to: str, request_id: str | None = None
) -> dict[str, Any]:
    """Publish a 3.1.1-style command with reply_to/request_id and return the matching reply."""
    request_id = request_id or uuid.uuid4().hex
    if isinstance(body, dict):
        payload: bytes = json.dumps({**body, "reply_to": reply_to, "request_id": request_id}).encode()
    else:
        payload = body
    start = len(sub.messages)
    await sub.client.publish(topic, payload, qos=1)
    msg = await sub.wait_for(
        lambda m: m.topic.value == reply_to and json.loads(m.payload).get("request_id") == request_id,
        start=start,
    )
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply


async def ask_v5(
    sub: Listener, topic: str, body: dict[str, Any], reply_to: str, correlation: bytes | None = None
) -> tuple[dict[str, Any], aiomqtt.Message]:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = reply_to
    wanted = correlation or uuid.uuid4().bytes
    props.CorrelationData = wanted
    start = len(sub.messages)
    await sub.client.publish(topic, json.dumps(body).encode(), qos=1, properties=props)
    msg = await sub.wait_for(
        lambda m: (
            m.topic.value == reply_to
            and m.properties is not None
            and getattr(m.properties, "CorrelationData", None) == wanted
        ),
        start=start,
    )
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply, msg


async def test_mqtt5_response_topic_and_correlation_data(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """An MQTT 5 client gets its reply on the response topic with its correlation data."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/screen-1/{uuid.uuid4().hex}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, reply_to, f"{root}/event/ticket_called") as sub,
    ):
        issued, _ = await ask_v5(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, reply_to)
        assert issued["ok"] is True and issued["ticket"]["number"] == "A001"
        called, msg = await ask_v5(sub, f"{root}/cmd/window/1/call_next", {}, reply_to, b"\x00corr-1")
        assert msg.properties is not None and msg.properties.CorrelationData == b"\x00corr-1"  # type: ignore[attr-defined]
        assert called["ok"] is True and called["ticket"]["number"] == "A001"
        await sub.topic(f"{root}/event/ticket_called")
        assert hall.service._q.window(1).current is not None


@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto", "embedded-mosquitto"])
async def test_mqtt311_reply_to_and_request_id(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str, embedded: bool
) -> None:
    """A 3.1.1 client gets its reply on reply_to echoing request_id, on Mosquitto and on the embedded broker."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/kiosk-k1"
    cfg = make_config(tmp_path, hall_id, None if embedded else mosquitto.url, protocol="3.1.1")
    async with running(cfg) as hall:
        url = hall.health_extra()["mqtt"]["url"]
        assert hall.health_extra()["mqtt"]["protocol"] == "3.1.1"
        async with listen(url, reply_to, f"{root}/window/3/state", protocol=V311) as sub:
            reply = await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "B"}, reply_to, "req-1")
            assert reply == {**reply, "ok": True, "request_id": "req-1", "command": "ticket.issue"}
            assert reply["ticket"]["number"] == "B001"
            for action in ("call_next", "recall", "start", "finish"):
                reply = await ask_v311(sub, f"{root}/cmd/window/3/{action}", {}, reply_to)
                assert reply["ok"] is True, (action, reply)
                assert reply["ticket"]["number"] == "B001"
            reply = await ask_v311(sub, f"{root}/cmd/window/3/pause", {}, reply_to)
            assert reply["ok"] is True and reply["window"]["state"] == "paused"
            await sub.wait_for(
                lambda m: m.topic.value == f"{root}/window/3/state" and json.loads(m.payload)["state"] == "paused"
            )
            reply = await ask_v311(sub, f"{root}/cmd/climate/floor1/set", {"mode": "cool", "target": 25.5}, reply_to)
            assert reply["ok"] is True and reply["climate"]["target"] == 25.5
            reply = await ask_v311(sub, f"{root}/cmd/display/led3/show", {"text": "暂停服务"}, reply_to)
            assert reply["ok"] is True and reply["display"] == "led3"
        assert [t.number for t in hall.service._q.tickets.values()] == ["B001"]


async def test_repeated_request_id_issues_one_ticket(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """A kiosk that retries with the same request_id gets the first reply, not a second ticket."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/kiosk-k1"
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall, listen(mosquitto.url, reply_to) as sub:
        first = await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, reply_to, "same-id")
        again = await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, reply_to, "same-id")
        other = await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, reply_to, "other-id")
        assert first == again
        assert first["ticket"]["number"] == "A001" and other["ticket"]["number"] == "A002"
        assert sorted(t.number for t in hall.service._q.tickets.values()) == ["A001", "A002"]
        c1, _ = await ask_v5(sub, f"{root}/cmd/ticket/issue", {"category": "B"}, reply_to, b"corr-x")
        c2, _ = await ask_v5(sub, f"{root}/cmd/ticket/issue", {"category": "B"}, reply_to, b"corr-x")
        assert c1 == c2 and c1["ticket"]["number"] == "B001"
        assert len(hall.service._q.tickets) == 3


@pytest.mark.parametrize(
    ("topic", "body", "code"),
    [
        ("cmd/ticket/issue", b"{not json", "malformed_json"),
        ("cmd/ticket/issue", b"[1, 2]", "malformed_json"),
        ("cmd/ticket/issue", {}, "invalid_arguments"),  # category missing
        ("cmd/ticket/issue", {"category": "Z"}, "unknown_category"),
        ("cmd/window/99/call_next", {}, "unknown_window"),
        ("cmd/window/x/call_next", {}, "invalid_arguments"),
        ("cmd/window/1/explode", {}, "unknown_command"),
        ("cmd/coffee/make", {}, "unknown_command"),
        ("cmd/window/1/call_next", {"surprise": 1}, "invalid_arguments"),
        ("cmd/window/1/recall", {}, None),  # nothing called: a refusal from the engine, whatever its code
    ],
)
async def test_bad_commands_get_an_error_reply_and_a_log_line(
    mosquitto: Mosquitto,
    tmp_path: Path,
    hall_id: str,
    caplog: pytest.LogCaptureFixture,
    topic: str,
    body: dict[str, Any] | bytes,
    code: str | None,
) -> None:
    """Malformed, unknown or refused commands get ok=false with a code, a log line, and the daemon carries on."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/tester"
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall, listen(mosquitto.url, reply_to) as sub:
        caplog.set_level(logging.INFO, logger="hallctl.mqtt.bridge")
        if isinstance(body, bytes):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = reply_to
            props.CorrelationData = b"bad"
            await sub.client.publish(f"{root}/{topic}", body, qos=1, properties=props)
            reply = json.loads((await sub.topic(reply_to)).payload)
        else:
            reply = await ask_v311(sub, f"{root}/{topic}", body, reply_to)
        assert reply["ok"] is False
        # As HTTP's problem+json: the Chinese text, the English one, and pydantic's list for bad arguments.
        assert {"code", "message", "message_en"} <= set(reply["error"]) <= {"code", "message", "message_en", "errors"}
        assert re.search(r"[\u4e00-\u9fff]", reply["error"]["message"]), reply
        if code is not None:
            assert reply["error"]["code"] == code, reply
        assert any(
            r.name == "hallctl.mqtt.bridge" and r.levelno >= logging.WARNING and root in r.getMessage()
            for r in caplog.records
        )
        # Still alive: the next good command works on the same link.
        good = await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, reply_to)
        assert good["ok"] is True
        assert hall.health_extra()["mqtt"]["connects"] == 1


async def test_retained_commands_and_foreign_reply_topics_are_refused(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """A retained command is not executed (it would rerun on every reconnect); a command whose reply
    topic is one of our own topics is not executed either, and nothing is published there."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/tester"
    cmd = f"{root}/cmd/ticket/issue"
    async with listen(mosquitto.url, cmd) as pre:
        await pre.client.publish(cmd, json.dumps({"category": "A"}), qos=1, retain=True)
        await pre.topic(cmd)
    try:
        async with (
            running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
            listen(mosquitto.url, reply_to, f"{root}/status") as sub,
        ):
            first = await ask_v311(sub, cmd, {"category": "A"}, reply_to)
            assert first["ticket"]["number"] == "A001"  # the retained one did not take A001
            bad = json.dumps({"category": "A", "reply_to": f"{root}/status", "request_id": "r"}).encode()
            await sub.client.publish(cmd, bad, qos=1)
            last = await ask_v311(sub, cmd, {"category": "B"}, reply_to)
            assert last["ok"] is True
            assert sorted(t.number for t in hall.service._q.tickets.values()) == ["A001", "B001"]
            assert [m.payload for m in sub.messages if m.topic.value == f"{root}/status"] == [b"online"]
    finally:
        async with listen(mosquitto.url) as pre:
            await pre.client.publish(cmd, b"", qos=1, retain=True)


async def test_ticket_and_appointment_commands_over_mqtt(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """Cancel, reprint, book, cancel and check in appointments, evaluate a ticket: the HTTP-only actions, over MQTT."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/guide-1"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, reply_to, f"{root}/event/ticket_cancelled") as sub,
    ):
        svc = hall.service
        a1 = (await ask_v311(sub, f"{root}/cmd/ticket/issue", {"category": "A", "kiosk": "k1"}, reply_to))["ticket"]
        reprint = await ask_v311(sub, f"{root}/cmd/ticket/{a1['id']}/reprint", {}, reply_to)
        assert reprint == {**reprint, "ok": True, "command": "ticket.reprint", "queued": True}
        cancel = await ask_v311(sub, f"{root}/cmd/ticket/{a1['id']}/cancel", {}, reply_to)
        assert cancel["ok"] is True and cancel["ticket"]["state"] == "cancelled"
        await sub.topic(f"{root}/event/ticket_cancelled")
        again = await ask_v311(sub, f"{root}/cmd/ticket/{a1['id']}/cancel", {}, reply_to)
        assert again["error"]["code"] == "ticket_not_waiting"

        now = svc.clock().astimezone(svc.cfg.hall.tz)
        # The next 30-minute slot: within its check-in window now (30 min early) and never late.
        start = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0) + timedelta(minutes=30)
        slot = {"slot_start": start.isoformat(), "slot_end": (start + timedelta(minutes=30)).isoformat()}
        for code in ("201234", "205678"):
            booked = await ask_v311(
                sub, f"{root}/cmd/appointment/book", {"category": "A", "code": code, **slot}, reply_to
            )
            assert booked["ok"] is True and booked["appointment"]["state"] == "booked"
        with_card = {"category": "A", **slot, "id_number": "11010519491231002X"}
        refused_id = await ask_v311(sub, f"{root}/cmd/appointment/book", with_card, reply_to)
        assert refused_id["ok"] is False and refused_id["error"]["code"] == "personal_data_over_mqtt"
        called_off = await ask_v311(sub, f"{root}/cmd/appointment/201234/cancel", {}, reply_to)
        assert called_off["ok"] is True and {**called_off["appointment"], "qr": booked["appointment"]["qr"]} == {
            **booked["appointment"],
            "code": "201234",
            "state": "cancelled",
        }
        assert svc._q.appointments["201234"].state == "cancelled"
        refused = await ask_v311(sub, f"{root}/cmd/appointment/201234/check_in", {"kiosk": "k1"}, reply_to)
        assert refused["ok"] is False and refused["error"]["code"] == "appointment_used"
        unknown = await ask_v311(sub, f"{root}/cmd/appointment/999999/cancel", {}, reply_to)
        assert unknown["error"]["code"] == "unknown_appointment"
        checked = await ask_v311(sub, f"{root}/cmd/appointment/205678/check_in", {"kiosk": "k1"}, reply_to)
        assert checked["ok"] is True and checked["ticket"]["priority"] == "appointment" and checked["ticket"]["qr"]

        await ask_v311(sub, f"{root}/cmd/window/1/call_next", {}, reply_to)
        await ask_v311(sub, f"{root}/cmd/window/1/finish", {}, reply_to)
        rated = await ask_v311(sub, f"{root}/cmd/ticket/{checked['ticket']['id']}/evaluate", {"level": 5}, reply_to)
        assert rated["ok"] is True and rated["evaluation"]["window"] == 1
        bad = await ask_v311(sub, f"{root}/cmd/window/1/call_next", {"window": 3}, reply_to)
        assert bad["error"]["code"] == "invalid_arguments"  # the topic names the window; the payload may not


async def test_by_qr_over_mqtt_never_carries_the_full_holder(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """A QR lookup over MQTT answers with the ticket and a masked holder: no full name, ID number or address."""
    root = f"hallctl/{hall_id}"
    reply_to = f"{root}/reply/window-1"
    holder = engine.Holder(name="欧阳修文", id_number="310104198807154417", address="上海市徐汇区某路2号")
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall, listen(mosquitto.url, reply_to) as sub:
        out = await hall.service.issue("A", channel="kiosk", kiosk="k1", holder=holder)
        reply = await ask_v311(sub, f"{root}/cmd/ticket/by_qr", {"code": out.qr}, reply_to)
        raw = json.dumps(reply, ensure_ascii=False)
        assert reply["ok"] is True and reply["command"] == "ticket.by_qr" and reply["ticket"]["id"] == out.ticket.id
        assert reply["holder"] == {"name": "欧**文", "id_number": mask_id(holder.id_number)}
        assert holder.name not in raw and holder.id_number not in raw and holder.id_number[6:14] not in raw
        assert "徐汇区" not in raw
        forged = await ask_v311(sub, f"{root}/cmd/ticket/by_qr", {"code": "T1.x.y"}, reply_to)
        assert forged["error"]["code"] == "bad_qr_token"
