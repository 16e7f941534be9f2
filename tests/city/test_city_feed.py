"""The hall's side of the city view: the event log on ``event/log`` and ``city.replay`` (real Mosquitto)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import jsonschema_rs

from hallctl import auth, config
from hallctl.citylog import parse_wire
from hallctl.mqtt import asyncapi
from tests.mqtt.mqtt_helpers import Mosquitto, hall_raw, listen, running


async def test_the_event_log_goes_out_row_by_row_and_a_range_is_replayed(tmp_path: Path) -> None:
    hall_id = "f" + uuid.uuid4().hex[:10]
    broker = Mosquitto(tmp_path)
    broker.start()
    root = f"hallctl/{hall_id}"
    raw = hall_raw(tmp_path, hall_id, broker.url)
    raw["city"] = {"feed": True, "replay_rate": 500}
    try:
        async with (
            listen(broker.url, f"{root}/event/log", f"{root}/reply/#") as city,
            running(config.parse(raw)) as hall,
        ):
            for cat in ("A", "B", "A"):
                await hall.service.issue(cat)
            await hall.service.call_next(1)
            stored = await hall.store.log_rows(0, None, 1000)
            assert [r.kind for r in stored] == ["issued", "issued", "issued", "called"]
            await city.wait_for(
                lambda m: m.topic.value == f"{root}/event/log" and json.loads(m.payload)["seq"] == stored[-1].seq,
                timeout=10,
            )
            live = [parse_wire(m.payload) for m in city.messages if m.topic.value == f"{root}/event/log"]
            assert {h for h, _ in live} == {hall_id}
            # Every row of the log, once, in order, as the hall stored it.
            assert [r for _, r in live] == stored
            # ... and as the AsyncAPI document describes the channel.
            doc = asyncapi.document(hall.cfg)
            assert doc["channels"]["log"]["address"] == f"{root}/event/log"
            check = jsonschema_rs.Draft202012Validator(doc["components"]["messages"]["log"]["payload"])
            for m in city.messages:
                if m.topic.value == f"{root}/event/log":
                    check.validate(json.loads(m.payload))
            assert not any(json.loads(m.payload).get("replay") for m in city.messages if "event/log" in m.topic.value)

            start = len(city.messages)
            await city.client.publish(
                f"{root}/cmd/city/replay",
                json.dumps({"from_seq": 2, "to_seq": 3, "reply_to": f"{root}/reply/city", "request_id": "r1"}),
                qos=1,
            )
            reply = json.loads((await city.topic(f"{root}/reply/city", start=start)).payload)
            assert reply["ok"] is True
            assert reply["replay"] == {
                "from_seq": 2,
                "to_seq": 3,
                "first_seq": stored[0].seq,
                "last_seq": stored[-1].seq,
            }
            await city.wait_for(
                lambda m: m.topic.value == f"{root}/event/log" and json.loads(m.payload).get("seq") == 3,
                start=start,
            )
            again = [json.loads(m.payload) for m in city.messages[start:] if m.topic.value == f"{root}/event/log"]
            assert [(d["seq"], d["replay"]) for d in again] == [(2, True), (3, True)]
            assert [parse_wire(json.dumps(d))[1] for d in again] == stored[1:3]

            bad = len(city.messages)
            await city.client.publish(
                f"{root}/cmd/city/replay",
                json.dumps({"from_seq": 5, "to_seq": 2, "reply_to": f"{root}/reply/city", "request_id": "r2"}),
                qos=1,
            )
            refused = json.loads((await city.topic(f"{root}/reply/city", start=bad)).payload)
            assert refused["error"]["code"] == "invalid_arguments"

            # Over HTTP with a `central` token (202); a kiosk token may not.
            central = await auth.create_token(hall.store, "central")
            kiosk = await auth.create_token(hall.store, "kiosk", kiosks=("k1",))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=10) as http:
                body = {"from_seq": 1, "to_seq": 1}
                ok = await http.post("/api/v1/city/replay", json=body, headers={"Authorization": f"Bearer {central}"})
                assert ok.status_code == 202, ok.text
                assert ok.json()["replay"]["to_seq"] == 1
                no = await http.post("/api/v1/city/replay", json=body, headers={"Authorization": f"Bearer {kiosk}"})
                assert no.status_code == 403
    finally:
        broker.stop()


async def test_replay_on_a_hall_without_the_feed_is_refused(tmp_path: Path) -> None:
    hall_id = "f" + uuid.uuid4().hex[:10]
    broker = Mosquitto(tmp_path)
    broker.start()
    root = f"hallctl/{hall_id}"
    try:
        async with (
            listen(broker.url, f"{root}/reply/#") as city,
            running(config.parse(hall_raw(tmp_path, hall_id, broker.url))),
        ):
            await city.client.publish(
                f"{root}/cmd/city/replay",
                json.dumps({"from_seq": 1, "to_seq": 3, "reply_to": f"{root}/reply/city", "request_id": "r1"}),
                qos=1,
            )
            reply = json.loads((await city.topic(f"{root}/reply/city")).payload)
            assert reply["error"]["code"] == "city_feed_off"
    finally:
        broker.stop()
