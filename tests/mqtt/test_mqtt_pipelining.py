"""Pipelined QoS 1 and coalesced state: events in order, at least once, never held back by one PUBACK.

The daemon reaches the (real) Mosquitto through :class:`AckHoldingProxy`, a loopback TCP
proxy that can hold everything the broker sends back (the PUBACKs among it) and can cut
the daemon's connection, so a slow or dying broker is reproduced without timing tricks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.mqtt import bridge as bridge_module
from tests.mqtt.mqtt_helpers import Mosquitto, free_port, listen, make_config, running, until


class AckHoldingProxy:
    """127.0.0.1:``port`` → the broker; ``hold`` keeps the broker's bytes back until ``release``."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.port = free_port()
        self.hold = False
        self.accepting = True
        self._held: list[tuple[asyncio.StreamWriter, bytes]] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, back=False), name="test.proxy.up"),
            asyncio.create_task(self._pipe(up_reader, writer, back=True), name="test.proxy.down"),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, back: bool) -> None:
        try:
            while data := await src.read(65536):
                if back and self.hold:
                    self._held.append((dst, data))
                else:
                    dst.write(data)
        except OSError:
            pass
        finally:
            dst.close()

    def release(self) -> None:
        self.hold = False
        for dst, data in self._held:
            if not dst.is_closing():
                dst.write(data)
        self._held.clear()

    def cut(self) -> None:
        """Drop every connection through the proxy (a broker that died, as the daemon sees it)."""
        self._held.clear()
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def proxied(broker: Mosquitto) -> AsyncIterator[AckHoldingProxy]:
    proxy = AckHoldingProxy(broker.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def numbers(messages: Sequence[aiomqtt.Message], topic: str) -> list[str]:
    return [
        json.loads(m.payload)["number"] for m in messages if m.topic.value == topic and isinstance(m.payload, bytes)
    ]


def start_acknowledged(hall: Hall) -> bool:
    """The start's events (published before the link was up) acknowledged: they wait in the outbox,
    whose flush ``in_flight`` does not count, so both must be empty, or a late PUBACK of the flush
    would be counted as one of the test's own."""
    mqtt = hall.health_extra()["mqtt"]
    return bool(mqtt["in_flight"] == 0 and mqtt["outbox"] == 0)


async def test_events_are_not_held_back_by_an_unacknowledged_publish(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """While the broker's PUBACKs are held back, later events still reach a subscriber, in order.

    Before the window, each event waited for the previous one's PUBACK: only the first got out.
    """
    root = f"hallctl/{hall_id}"
    issued_topic = f"{root}/event/ticket_issued"
    async with (
        proxied(mosquitto) as proxy,
        running(make_config(tmp_path, hall_id, proxy.url)) as hall,
        listen(mosquitto.url, f"{root}/event/#") as sub,
    ):
        assert hall.health_extra()["mqtt"]["connected"]
        # What the hall published at start (the climate zone's stale-sensor alert, stored then published)
        # is acknowledged first, so the count below is of the held events only.
        await hall.bus.drain()
        await until(lambda: start_acknowledged(hall), what="the start's events acknowledged")
        sent0 = hall.health_extra()["mqtt"]["sent"]
        proxy.hold = True
        try:
            # Eight tickets: with their queue states within the client's in-flight window (20).
            for _ in range(8):
                await hall.service.issue("A")
            await sub.wait_for(
                lambda _m: numbers(sub.messages, issued_topic)[-1:] == ["A008"],
                timeout=5,
            )
            assert numbers(sub.messages, issued_topic) == [f"A{i:03d}" for i in range(1, 9)]
            mqtt = hall.health_extra()["mqtt"]
            assert mqtt["in_flight"] >= 8 and mqtt["sent"] == sent0, mqtt  # delivered only once acknowledged
        finally:
            proxy.release()
        await until(lambda: hall.health_extra()["mqtt"]["in_flight"] == 0, what="the PUBACKs counted")
        # A burst much larger than the client's in-flight window: complete and in order.
        for _ in range(150):
            await hall.service.issue("A")
        await sub.wait_for(lambda m: m.topic.value == issued_topic and json.loads(m.payload)["number"] == "A158")
        assert numbers(sub.messages, issued_topic) == [f"A{i:03d}" for i in range(1, 159)]
        await until(lambda: hall.health_extra()["mqtt"]["in_flight"] == 0, what="the PUBACKs counted")
        assert hall.health_extra()["mqtt"]["outbox"] == 0


async def test_broker_killed_mid_burst_loses_nothing_and_keeps_order(tmp_path: Path, hall_id: str) -> None:
    """Events published but not acknowledged when the broker dies go to the outbox and arrive, in order."""
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    root = f"hallctl/{hall_id}"
    issued_topic = f"{root}/event/ticket_issued"
    try:
        async with proxied(broker) as proxy, running(make_config(tmp_path, hall_id, proxy.url)) as hall:
            async with listen(broker.url, f"{root}/event/#") as sub:
                # The start's own events (the climate zone's stale-sensor alert) acknowledged first.
                await hall.bus.drain()
                await until(lambda: start_acknowledged(hall), what="the start's events acked")
                sent0 = hall.health_extra()["mqtt"]["sent"]
                proxy.hold = True
                for _ in range(30):
                    await hall.service.issue("A")
                # Some reached the broker (the in-flight window), none is acknowledged.
                await sub.wait_for(lambda m: m.topic.value == issued_topic, timeout=5)
            assert hall.health_extra()["mqtt"]["sent"] == sent0
            proxy.accepting = False  # the daemon finds no broker until the subscriber is back
            assert broker.proc is not None
            broker.proc.kill()
            broker.proc.wait()
            broker.proc = None
            proxy.cut()
            await until(lambda: not hall.health_extra()["mqtt"]["connected"], what="the daemon saw the loss")
            for _ in range(5):
                await hall.service.issue("A")
            await hall.bus.drain()
            await until(lambda: hall.health_extra()["mqtt"]["outbox"] == 35, what="35 events in the outbox")
            broker.start()
            async with listen(broker.url, f"{root}/event/#") as sub:
                proxy.release()
                proxy.accepting = True
                await sub.wait_for(
                    lambda m: m.topic.value == issued_topic and json.loads(m.payload)["number"] == "A035", timeout=15
                )
                assert numbers(sub.messages, issued_topic) == [f"A{i:03d}" for i in range(1, 36)]
                await until(lambda: hall.health_extra()["mqtt"]["outbox"] == 0, what="the outbox emptied")
    finally:
        broker.stop()


async def test_state_is_coalesced_per_tick_and_events_never_are(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str
) -> None:
    """Fifty changes of one state topic in one tick: one publish of the last state; fifty facts: fifty."""
    root = f"hallctl/{hall_id}"
    state_topic = f"{root}/queue/A/state"
    issued_topic = f"{root}/event/ticket_issued"
    async with running(make_config(tmp_path, hall_id, mosquitto.url)) as hall:
        async with listen(mosquitto.url, f"{root}/event/#", state_topic) as sub:
            await sub.barrier()
            start = len(sub.messages)
            now = datetime.now(UTC)
            for i in range(1, 51):  # what the service publishes for a burst of issues, in one go
                hall.bus.publish(
                    ev.TicketIssued(
                        at=now,
                        ticket_id=f"x-A{i:03d}",
                        number=f"A{i:03d}",
                        category="A",
                        priority="normal",
                        channel="kiosk",
                        kiosk="k1",
                        holder=None,
                        waiting_ahead=i - 1,
                    )
                )
                hall.bus.publish(
                    ev.QueueState(
                        at=now,
                        category="A",
                        name="便民服务",
                        waiting=i,
                        last_issued=f"A{i:03d}",
                        last_called=None,
                        avg_wait_s=None,
                        open=True,
                    )
                )
            await sub.wait_for(
                lambda m: m.topic.value == state_topic and json.loads(m.payload)["waiting"] == 50, start=start
            )
            await sub.wait_for(
                lambda m: m.topic.value == issued_topic and json.loads(m.payload)["number"] == "A050", start=start
            )
            new = sub.messages[start:]
            assert numbers(new, issued_topic) == [f"A{i:03d}" for i in range(1, 51)]
            states = [json.loads(m.payload)["waiting"] for m in new if m.topic.value == state_topic]
            assert states[-1] == 50 and states == sorted(states)
            assert len(states) < 50, f"{len(states)} publishes of one state topic for 50 changes in one tick"
            assert hall.health_extra()["mqtt"]["coalesced"] >= 50 - len(states)
        # A screen that connects now gets the last state, retained.
        async with listen(mosquitto.url, state_topic) as late:
            retained = await late.topic(state_topic)
            assert retained.retain and json.loads(retained.payload)["waiting"] == 50


async def test_a_broker_that_stops_acknowledging_ends_the_session_and_nothing_is_lost(
    mosquitto: Mosquitto, tmp_path: Path, hall_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No PUBACK for ``PUBLISH_TIMEOUT_S``: the session ends, the events wait in the outbox and arrive in order.

    The pipelined publishes carry no timeout of their own (one watchdog per session watches the
    oldest in flight), so this checks that a silent broker is still noticed.
    """
    monkeypatch.setattr(bridge_module, "PUBLISH_TIMEOUT_S", 0.4)
    root = f"hallctl/{hall_id}"
    issued_topic = f"{root}/event/ticket_issued"
    async with (
        proxied(mosquitto) as proxy,
        running(make_config(tmp_path, hall_id, proxy.url)) as hall,
        listen(mosquitto.url, f"{root}/event/#") as sub,
    ):
        connects = hall.health_extra()["mqtt"]["connects"]
        proxy.hold = True
        for _ in range(5):
            await hall.service.issue("A")
        await until(
            lambda: not hall.health_extra()["mqtt"]["connected"] or hall.health_extra()["mqtt"]["connects"] > connects,
            what="the session ended for want of a PUBACK",
            timeout=4,  # before the keepalive (5 s here) would notice the silence: the watchdog did
        )
        proxy.cut()  # the held bytes belong to the dead session
        proxy.hold = False
        await until(lambda: hall.health_extra()["mqtt"]["sent"] >= 5, what="five events acknowledged", timeout=15)
        await sub.wait_for(lambda _m: numbers(sub.messages, issued_topic)[-1:] == ["A005"], timeout=15)
        got = numbers(sub.messages, issued_topic)
        assert sorted(set(got)) == [f"A{i:03d}" for i in range(1, 6)]  # at least once
        assert got[-5:] == [f"A{i:03d}" for i in range(1, 6)]  # the resend is whole and in order
        await until(lambda: hall.health_extra()["mqtt"]["outbox"] == 0, what="the outbox emptied")
