"""The outbox: events survive a broker outage and arrive in order; the disk use is bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl.mqtt.outbox import Outbox
from hallctl.store import Store
from tests.mqtt.mqtt_helpers import Mosquitto, listen, make_config, running


async def test_events_during_a_broker_outage_arrive_in_order_after_restart(tmp_path: Path, hall_id: str) -> None:
    """Stop the broker, issue and call tickets, restart it on the same port: every event, in order."""
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    root = f"hallctl/{hall_id}"
    # A screen with a persistent session: the broker keeps its QoS 1 messages while it is away,
    # so the test does not race the daemon's reconnect.
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    sub_kw: dict[str, Any] = {"identifier": f"screen-{hall_id}", "clean_start": False, "properties": props}
    try:
        async with running(make_config(tmp_path, hall_id, broker.url)) as hall:
            async with listen(broker.url, f"{root}/event/#", **sub_kw) as sub:
                await hall.service.issue("A")
                await sub.topic(f"{root}/event/ticket_issued")
            broker.stop()
            for _ in range(3):
                await hall.service.issue("A")
            await hall.service.call_next(1)
            await hall.service.finish(1)
            await hall.service.call_next(1)
            await hall.service.recall(1)
            await hall.bus.drain()
            health = hall.health_extra()["mqtt"]
            assert health["outbox"] == 7
            broker.start()
            async with listen(broker.url, **sub_kw) as sub:  # resumes the session: no new subscribe needed
                await sub.wait_for(
                    lambda m: m.topic.value.endswith("ticket_called") and json.loads(m.payload)["recall"] == 1,
                    timeout=15,
                )
                got = [
                    (m.topic.value.rsplit("/", 1)[1], json.loads(m.payload).get("number"))
                    for m in sub.messages
                    if "/event/" in m.topic.value
                ]
                assert got == [
                    ("ticket_issued", "A002"),
                    ("ticket_issued", "A003"),
                    ("ticket_issued", "A004"),
                    ("ticket_called", "A001"),
                    ("ticket_finished", "A001"),
                    ("ticket_called", "A002"),
                    ("ticket_called", "A002"),
                ]
                # A new event goes out behind the flushed outbox (it waits for the flush to finish).
                await hall.service.issue("A")
                await sub.wait_for(
                    lambda m: m.topic.value.endswith("ticket_issued") and json.loads(m.payload)["number"] == "A005"
                )
            assert hall.health_extra()["mqtt"]["outbox"] == 0
    finally:
        broker.stop()


async def test_outbox_is_bounded_and_drops_the_oldest(tmp_path: Path) -> None:
    """A long outage keeps the newest rows up to outbox_max and counts the dropped ones."""
    store = Store(str(tmp_path / "o.db"))
    await store.open()
    try:
        box = Outbox(store, max_rows=10)
        for i in range(25):
            await box.append("t/e", json.dumps({"i": i}), 1)
        assert box.size == 10 and box.dropped == 15
        rows = await box.peek(100)
        assert [json.loads(r.payload)["i"] for r in rows] == list(range(15, 25))
        await box.remove_through(rows[4].seq)
        assert box.size == 5
        again = Outbox(store, max_rows=10)
        assert await again.load() == 5  # survives a restart of the daemon
        assert [json.loads(r.payload)["i"] for r in await again.peek(100)] == list(range(20, 25))
    finally:
        await store.close()
