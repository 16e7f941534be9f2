"""Retained state, events and topic cleanup against a real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

from hallctl import config
from tests.mqtt.mqtt_helpers import Mosquitto, hall_raw, listen, make_config, running, until


async def test_late_subscriber_sees_status_and_present_state(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """A screen connecting after the fact gets online status and every state topic at once."""
    root = f"hallctl/{hall_id}"
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall:
        await hall.service.issue("A")
        await hall.service.issue("A")
        await hall.service.call_next(1)
        # A subscriber that waits for the queue state to show the call, then leaves.
        async with listen(mosquitto.url, f"{root}/queue/A/state") as first:
            await first.wait_for(lambda m: json.loads(m.payload)["last_called"] == "A001")
        async with listen(mosquitto.url, f"{root}/#") as late:
            status = await late.topic(f"{root}/status")
            assert status.payload == b"online" and status.retain
            queue = json.loads((await late.topic(f"{root}/queue/A/state")).payload)
            assert queue["waiting"] == 1 and queue["last_issued"] == "A002" and queue["last_called"] == "A001"
            window = json.loads((await late.topic(f"{root}/window/1/state")).payload)
            assert window["state"] == "called" and window["ticket"] == "A001"
            assert "staff_name" not in window
            climate = await late.topic(f"{root}/climate/floor1/state")
            assert climate.retain and json.loads(climate.payload)["mode"] == "auto"
            assert (await late.topic(f"{root}/window/3/state")).retain
            assert (await late.topic(f"{root}/queue/B/state")).retain
    async with listen(mosquitto.url, f"{root}/status") as after:
        assert (await after.topic(f"{root}/status")).payload == b"offline"


async def test_events_in_order_with_announcement_and_without_internal_ones(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """Ticket events arrive in order at QoS 1; the call carries the announcement; internal events stay home."""
    root = f"hallctl/{hall_id}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, f"{root}/event/#") as sub,
    ):
        await hall.service.sign_in(3, "0231")
        t = (await hall.service.issue("B")).ticket
        await hall.service.call_next(3)
        await hall.service.finish(3)  # emits EvaluationRequested (internal) as well
        await hall.service.evaluate(3, 5, "pad")
        await hall.service.reprint(t.id, "k1")  # PrintRequested: internal
        evaluation = await sub.topic(f"{root}/event/evaluation")
        names = [m.topic.value.rsplit("/", 1)[1] for m in sub.messages]
        assert names == ["staff_signed_in", "ticket_issued", "ticket_called", "ticket_finished", "evaluation"]
        assert all(m.qos == 1 and not m.retain for m in sub.messages)
        called = sub.on(f"{root}/event/ticket_called")[0]
        assert called["announcement"] == "请B001号到3号窗口办理"
        assert called["window"] == 3 and called["recall"] == 0
        assert json.loads(evaluation.payload)["level"] == 5
        assert "staff_name" not in sub.on(f"{root}/event/staff_signed_in")[0]
        # The internal PrintRequested came after the evaluation; an event after it proves it was skipped.
        await hall.service.issue("A")
        await sub.topic(f"{root}/event/ticket_issued", start=len(sub.messages))
        assert not [m for m in sub.messages if m.topic.value.endswith(("print_requested", "evaluation_requested"))]


async def test_card_read_is_published_without_the_offer(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """The card_read event is masked and never carries the offer capability."""
    from datetime import date

    from hallctl.engine import Holder

    root = f"hallctl/{hall_id}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)) as hall,
        listen(mosquitto.url, f"{root}/event/card_read") as sub,
    ):
        await hall.service.card_read(
            "k1", Holder(name="欧阳娜娜", id_number="110105194912310021", birth=date(1949, 12, 31))
        )
        msg = json.loads((await sub.topic(f"{root}/event/card_read")).payload)
        assert "offer" not in msg
        assert msg["holder"] == "欧**娜" or "*" in msg["holder"]
        assert "欧阳娜娜" not in json.dumps(msg, ensure_ascii=False)
        assert msg["kiosk"] == "k1" and msg["elderly"] is True


async def test_removed_window_and_category_topics_are_cleared(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """After a config change, the state and HA config of removed parts get empty retained messages."""
    root = f"hallctl/{hall_id}"
    node = f"hallctl_{hall_id}"
    async with (
        running(make_config(tmp_path, hall_id, mosquitto.url)),
        listen(mosquitto.url, f"{root}/#", f"homeassistant/+/{node}/#") as sub,
    ):
        await sub.topic(f"{root}/window/3/state")
        await sub.topic(f"homeassistant/sensor/{node}/queue_B_waiting/config")
    raw = hall_raw(tmp_path, hall_id, mosquitto.url)
    raw["category"] = raw["category"][:1]
    raw["window"] = [raw["window"][0]]
    raw["kiosk"] = [{"id": "k1", "categories": ["A"]}]
    async with running(config.parse(raw)), listen(mosquitto.url, f"{root}/#", f"homeassistant/+/{node}/#") as sub:
        await sub.topic(f"{root}/window/1/state")
        await sub.topic(f"homeassistant/sensor/{node}/queue_A_waiting/config")
        await sub.barrier()
        topics = {m.topic.value for m in sub.messages}
        assert f"{root}/window/3/state" not in topics
        assert f"{root}/queue/B/state" not in topics
        assert f"homeassistant/sensor/{node}/queue_B_waiting/config" not in topics
        assert f"homeassistant/sensor/{node}/window_3_state/config" not in topics


async def test_state_republished_after_the_broker_forgot_it(tmp_path: Path, hall_id: str) -> None:
    """A broker restarted without persistence gets online status and state again on reconnect."""
    (tmp_path / "b").mkdir()
    broker = Mosquitto(tmp_path / "b")
    broker.start()
    root = f"hallctl/{hall_id}"
    try:
        async with running(make_config(tmp_path, hall_id, broker.url)) as hall:
            await hall.service.issue("A")
            async with listen(broker.url, f"{root}/queue/A/state") as sub:
                await sub.wait_for(lambda m: json.loads(m.payload)["waiting"] == 1)
            broker.stop()
            broker.start()
            async with listen(broker.url, f"{root}/queue/A/state") as sub:
                await sub.topic(f"{root}/queue/A/state", timeout=10)  # live or retained: the daemon is back
            async with listen(broker.url, f"{root}/status", f"{root}/queue/A/state") as sub:
                assert (await sub.topic(f"{root}/status")).payload == b"online"
                state = await sub.topic(f"{root}/queue/A/state")
                assert state.retain and json.loads(state.payload)["waiting"] == 1
            # The state can reach a subscriber while the bridge is still republishing; connects counts after.
            await until(lambda: hall.health_extra()["mqtt"]["connects"] >= 2, what="second connect counted")
    finally:
        broker.stop()


async def test_health_reports_the_link(mosquitto: Mosquitto, tmp_path: Path, hall_id: str) -> None:
    """Health shows the broker URL without credentials, the link and the outbox."""
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall:
        async with listen(mosquitto.url, f"hallctl/{hall_id}/status") as sub:
            await sub.topic(f"hallctl/{hall_id}/status", payload=b"online")
        # Start-up alerts (unstaffed windows, supervision) may still be in flight just after "online".
        await until(lambda: hall.health_extra()["mqtt"]["outbox"] == 0, what="outbox drained")
        h = hall.health_extra()["mqtt"]
        assert h["url"] == mosquitto.url and h["protocol"] == "5" and h["outbox"] == 0
        assert h["connected"] is True and h["ok"] is True


async def test_a_live_edit_updates_discovery_and_clears_what_it_removed(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """The console adds a window and removes another while the hall runs: Home Assistant gets the new
    window's entity at once, and the removed window's entity and retained state are cleared, without
    a reconnect or a restart (they were only at the next connect before)."""
    root = f"hallctl/{hall_id}"
    node = f"hallctl_{hall_id}"
    raw = hall_raw(tmp_path, hall_id, mosquitto.url)
    gone = raw["window"][-1]["number"]
    async with (
        running(config.parse(raw)) as hall,
        listen(mosquitto.url, f"{root}/#", f"homeassistant/+/{node}/#") as sub,
    ):
        await sub.topic(f"homeassistant/sensor/{node}/window_{gone}_state/config")
        await sub.barrier()
        start = len(sub.messages)
        edited = dict(raw)
        edited["window"] = [*raw["window"][:-1], {"number": 9, "categories": [raw["category"][0]["prefix"]]}]
        await hall.service.reconfigure(config.parse(edited), ("window",))
        await sub.wait_for(
            lambda m: m.topic.value == f"homeassistant/sensor/{node}/window_9_state/config" and bool(m.payload),
            start=start,
        )
        for topic in (f"homeassistant/sensor/{node}/window_{gone}_state/config", f"{root}/window/{gone}/state"):
            await sub.topic(topic, payload=b"", start=start)
