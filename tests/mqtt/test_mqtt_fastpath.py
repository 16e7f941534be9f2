"""The event path's own socket work (:mod:`hallctl.mqtt.fastpath`) against a real Mosquitto.

The fast path reads the socket in one ``recv``, settles short PUBACKs of
``publish_nowait``'s messages itself and hands every other byte to paho; it writes every
queued packet with one ``send``. What it could break, each checked here with MQTT 5 and
3.1.1: many PUBACKs in one read, a PUBACK cut anywhere between reads, a command PUBLISH
arriving between PUBACKs (and cut in two), PUBACKs with a failure reason code or with
properties (MQTT 5), packets larger than the socket takes at once, QoS 0 beside QoS 1.

To put bytes on the wire the way a busy network does, a :class:`Relay` sits between the
client and Mosquitto and can hold what the broker sends and hand it over in pieces.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import json
import ssl
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion

from hallctl.errors import MqttClientIncompatible
from hallctl.mqtt.fastpath import check_paho
from hallctl.mqtt.pipeline import PipelinedClient
from tests.mqtt.mqtt_helpers import Mosquitto, free_port, listen, until
from tests.mqtt.test_mqtt_tls import make_pki

VERSIONS = [aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311]
IDS = ["v5", "v311"]
PUBACK = 0x40
PUBLISH = 0x30


def packets(data: bytes | bytearray) -> list[bytes]:
    """The complete MQTT packets at the start of ``data`` (fixed header, remaining length, body)."""
    out: list[bytes] = []
    pos = 0
    while pos + 2 <= len(data):
        length, mult, i = 0, 1, pos + 1
        while True:
            if i >= len(data):
                return out
            byte = data[i]
            length += (byte & 0x7F) * mult
            mult *= 128
            i += 1
            if not byte & 0x80:
                break
        if i + length > len(data):
            return out
        out.append(bytes(data[pos : i + length]))
        pos = i + length
    return out


def count(data: bytes | bytearray, kind: int) -> int:
    return sum(1 for p in packets(data) if p[0] & 0xF0 == kind)


class Relay:
    """A TCP relay to Mosquitto for one client: while holding, the broker's bytes wait in ``held``."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.port = 0
        self.holding = False
        self.held = bytearray()
        self._to_client: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, down: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if down and self.holding:
                    self.held += data
                    continue
                writer.write(data)
                await writer.drain()

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        breader, bwriter = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self._to_client = cwriter
        self._writers += [cwriter, bwriter]
        self._tasks += [
            asyncio.create_task(self._pump(creader, bwriter, False), name="test.relay.up"),
            asyncio.create_task(self._pump(breader, cwriter, True), name="test.relay.down"),
        ]

    async def release(self, n: int | None = None) -> None:
        """Hand the first ``n`` held bytes (all by default) to the client in one write."""
        assert self._to_client is not None
        n = len(self.held) if n is None else n
        chunk = bytes(self.held[:n])
        del self.held[:n]
        self._to_client.write(chunk)
        await self._to_client.drain()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for w in self._writers:
                w.close()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()


def unread(client: PipelinedClient) -> int:
    """Bytes waiting in the client's socket (0: its reader took everything it was sent)."""
    sock = client._client._sock
    assert sock is not None
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return buf[0]


async def read_by_client(client: PipelinedClient) -> None:
    await until(lambda: unread(client) == 0, timeout=5, what="the client read what the relay sent")


def paho_settled(client: PipelinedClient) -> bool:
    """paho holds no message and counts none in flight (its window is free again)."""
    return not client._client._out_messages and client._client._inflight_messages == 0


@contextlib.asynccontextmanager
async def relayed(
    mosquitto: Mosquitto, protocol: aiomqtt.ProtocolVersion, acked: list[int]
) -> AsyncIterator[tuple[Relay, PipelinedClient]]:
    async with (
        Relay(mosquitto.port).running() as relay,
        PipelinedClient("127.0.0.1", relay.port, protocol=protocol, on_acked=acked.append) as client,
    ):
        yield relay, client


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_many_pubacks_in_one_read_are_all_reported_in_order_and_paho_sends_the_queued(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    topic = f"test/{hall_id}/event"
    acked: list[int] = []
    async with listen(mosquitto.url, topic) as sub, relayed(mosquitto, protocol, acked) as (relay, client):
        relay.holding = True
        sent = [client.publish_nowait(topic, json.dumps({"n": i}), 1, False) for i in range(50)]

        async def one_window(target: int) -> None:
            await until(lambda: count(relay.held, PUBACK) >= target - len(acked), timeout=5, what="a window held")
            await relay.release()
            await until(lambda: len(acked) >= target, timeout=5, what="the window acknowledged")

        rounds = 0
        while len(acked) < 50 and rounds < 10:  # paho sends 20 at a time: each window's PUBACKs in one write
            rounds += 1
            await one_window(len(acked) + min(20, 50 - len(acked)))
        assert acked == sent
        assert rounds == 3
        assert paho_settled(client)
        await sub.wait_for(lambda m: m.topic.value == topic and json.loads(m.payload)["n"] == 49)
        assert [json.loads(m.payload)["n"] for m in sub.messages if m.topic.value == topic] == list(range(50))


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_awaited_publishes_among_queued_events_keep_their_place_on_the_wire(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    """Beyond paho's window of 20 messages wait in its queue: a reply or a state published with
    aiomqtt's awaited publish among the events leaves in the order it was handed over, as paho
    sends its queue (the fast path sends the queued ones itself when a PUBACK frees a place).
    The relay holds the PUBACKs, so the window stays full while the messages are handed over."""
    topic = f"test/{hall_id}/order"
    acked: list[int] = []
    async with listen(mosquitto.url, f"{topic}/#") as sub, relayed(mosquitto, protocol, acked) as (relay, client):
        paho_client: Any = client._client
        relay.holding = True

        async def handed(before: int) -> None:  # paho numbers each message it is handed
            await until(lambda: paho_client._last_mid != before, timeout=5, what="handed to paho")

        awaited: list[asyncio.Task[None]] = []
        for i in range(80):
            if i % 7 == 3 and i > 20:
                numbered = paho_client._last_mid
                awaited.append(asyncio.create_task(client.publish(f"{topic}/awaited", str(i), qos=1)))
                await handed(numbered)
            else:
                client.publish_nowait(f"{topic}/event", str(i), 1, False)
        assert paho_client._inflight_messages == 20 and len(paho_client._out_messages) == 80
        for _ in range(10):  # a window's PUBACKs at a time, each read frees places for the queued
            if len(acked) == 80 - len(awaited):
                break
            await until(lambda: count(relay.held, PUBACK) >= 1, timeout=5, what="PUBACKs held")
            await relay.release()
            await read_by_client(client)
        async with asyncio.timeout(10):
            await asyncio.gather(*awaited)
        await until(lambda: len(acked) == 80 - len(awaited), timeout=10, what="every event acknowledged")
        await sub.wait_for(lambda m: m.topic.value.startswith(topic) and m.payload == b"79", timeout=10)
        order = [int(bytes(m.payload)) for m in sub.messages if m.topic.value.startswith(topic)]
        assert order == list(range(80))
        assert paho_settled(client)


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_pubacks_cut_anywhere_are_reported_once_each_when_complete(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    """PUBACKs handed over in pieces of 1 to 7 bytes: each cut lands somewhere else in a packet
    (the command byte alone, the length, part of the message id, all but the MQTT 5 reason code).
    No subscriber: Mosquitto's MQTT 5 PUBACK then carries 0x10 (no matching subscribers), 5 bytes."""
    acked: list[int] = []
    async with relayed(mosquitto, protocol, acked) as (relay, client):
        relay.holding = True
        for piece in (1, 2, 3, 4, 6, 7):
            before = len(acked)
            sent = [client.publish_nowait(f"test/{hall_id}/event", b"x", 1, False) for _ in range(6)]
            await until(lambda: count(relay.held, PUBACK) == 6, timeout=5, what="6 PUBACKs held")
            sizes = [len(p) for p in packets(relay.held)]
            assert sizes == [5 if protocol == aiomqtt.ProtocolVersion.V5 else 4] * 6
            ends = [sum(sizes[: i + 1]) for i in range(6)]
            given = 0
            while relay.held:
                await relay.release(piece)
                given = min(given + piece, ends[-1])
                await read_by_client(client)
                complete = sum(1 for end in ends if end <= given)
                assert acked[before:] == sent[:complete], f"pieces of {piece}, after {given} bytes"
            assert acked[before:] == sent
        assert paho_settled(client)


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_a_command_between_pubacks_reaches_the_reader_even_cut_in_two(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    cmd = f"test/{hall_id}/cmd/ticket/issue"
    acked: list[int] = []
    async with relayed(mosquitto, protocol, acked) as (relay, client):
        await client.subscribe(cmd, qos=1)
        relay.holding = True
        sent = [client.publish_nowait(f"test/{hall_id}/event", b"e", 1, False) for _ in range(3)]
        await until(lambda: count(relay.held, PUBACK) == 3, timeout=5, what="3 PUBACKs held")
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=protocol) as other:
            await other.publish(cmd, json.dumps({"category": "A", "pad": "x" * 300}), qos=1)
        await until(lambda: count(relay.held, PUBLISH) == 1, timeout=5, what="the command held")
        sent += [client.publish_nowait(f"test/{hall_id}/event", b"e", 1, False) for _ in range(3)]
        await until(lambda: count(relay.held, PUBACK) == 6, timeout=5, what="6 PUBACKs held")
        kinds = [p[0] & 0xF0 for p in packets(relay.held)]
        assert kinds == [PUBACK] * 3 + [PUBLISH] + [PUBACK] * 3
        middle = sum(len(p) for p in packets(relay.held)[:3]) + 150  # inside the command's payload
        await relay.release(middle)
        await read_by_client(client)
        assert acked == sent[:3]
        await relay.release()
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
        assert message.topic.value == cmd
        assert json.loads(message.payload)["category"] == "A"
        await until(lambda: len(acked) == 6, timeout=5, what="all 6 PUBACKs")
        assert acked == sent
        assert paho_settled(client)


def puback_v5(mid: int, reason: int, properties: bytes | None) -> bytes:
    body = mid.to_bytes(2, "big") + bytes([reason])
    if properties is not None:
        body += bytes([len(properties)]) + properties
    return bytes([PUBACK, len(body)]) + body


async def test_a_puback_with_a_failure_code_or_properties_acknowledges_as_before(
    mosquitto: Mosquitto, hall_id: str
) -> None:
    """MQTT 5: a broker may refuse a message in its PUBACK (e.g. 0x87 not authorized, as EMQX's ACL
    does; Mosquitto 2.0 answers 0x00 and drops it). Today any PUBACK acknowledges the message
    (the bridge counts it delivered and never sends it again); the fast path keeps that, in
    each form a v5 PUBACK can take. The relay puts the broker's refusals in place of its PUBACKs.
    """
    acked: list[int] = []
    async with relayed(mosquitto, aiomqtt.ProtocolVersion.V5, acked) as (relay, client):
        relay.holding = True
        sent = [client.publish_nowait(f"test/{hall_id}/event", b"x", 1, False) for _ in range(4)]
        await until(lambda: count(relay.held, PUBACK) == 4, timeout=5, what="4 PUBACKs held")
        reason_string = b"\x1f\x00\x0enot authorized"  # property 0x1F, a UTF-8 string
        relay.held[:] = b"".join(
            [
                puback_v5(sent[0], 0x87, None),  # 40 03: refused
                puback_v5(sent[1], 0x80, b""),  # 40 04 … 00: refused, empty properties
                puback_v5(sent[2], 0x87, reason_string),  # with a reason string: paho's decoding
                puback_v5(sent[3], 0x00, None),
            ]
        )
        await relay.release()
        await until(lambda: len(acked) == 4, timeout=5, what="4 PUBACKs reported")
        assert acked == sent
        assert paho_settled(client)


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_packets_larger_than_the_socket_takes_at_once_arrive_whole_and_in_order(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    """8 MiB queued in one pass: the writer sends what the socket takes and waits for room for the rest."""
    topic = f"test/{hall_id}/big"
    acked: list[int] = []
    async with (
        listen(mosquitto.url, topic) as sub,
        PipelinedClient("127.0.0.1", mosquitto.port, protocol=protocol, on_acked=acked.append) as client,
    ):
        big = 512 * 1024
        sent = [client.publish_nowait(topic, bytes([i]) * big, 1, False) for i in range(16)]
        await until(lambda: len(acked) == 16, timeout=20, what="16 large PUBACKs")
        assert acked == sent
        await sub.wait_for(lambda m: m.topic.value == topic and bytes(m.payload)[:1] == b"\x0f", timeout=20)
        got = [bytes(m.payload) for m in sub.messages if m.topic.value == topic]
        assert got == [bytes([i]) * big for i in range(16)]


@pytest.mark.parametrize("protocol", VERSIONS, ids=IDS)
async def test_qos0_beside_qos1_each_reported_once_in_order(
    mosquitto: Mosquitto, hall_id: str, protocol: aiomqtt.ProtocolVersion
) -> None:
    """A QoS 0 message counts once written (paho's own writer), a QoS 1 one at its PUBACK; neither twice."""
    topic = f"test/{hall_id}/mixed"
    acked: list[int] = []
    async with (
        listen(mosquitto.url, topic) as sub,
        PipelinedClient("127.0.0.1", mosquitto.port, protocol=protocol, on_acked=acked.append) as client,
    ):
        sent = [client.publish_nowait(topic, str(i), i % 2, False) for i in range(20)]
        await until(lambda: len(acked) == 20, timeout=5, what="20 reports")
        await sub.wait_for(lambda m: m.topic.value == topic and m.payload == b"19")
        assert sorted(acked) == sorted(sent) and len(set(acked)) == 20
        assert [int(bytes(m.payload)) for m in sub.messages if m.topic.value == topic] == list(range(20))
        assert paho_settled(client)


async def test_the_fast_path_settles_event_pubacks_without_paho_and_leaves_awaited_ones_to_it(
    mosquitto: Mosquitto, hall_id: str
) -> None:
    """The gain itself: publish_nowait's PUBACKs never reach paho's PUBACK handler, aiomqtt's do."""
    acked: list[int] = []
    handled: list[int] = []
    async with PipelinedClient("127.0.0.1", mosquitto.port, on_acked=acked.append) as client:
        paho_client: Any = client._client
        handle = paho_client._handle_pubackcomp

        def counting(cmd: Any) -> Any:
            handled.append(1)
            return handle(cmd)

        paho_client._handle_pubackcomp = counting
        sent = [client.publish_nowait(f"test/{hall_id}/event", b"x", 1, False) for _ in range(40)]
        await client.publish(f"test/{hall_id}/state", b"s", qos=1)
        await until(lambda: len(acked) == 40, timeout=5, what="40 PUBACKs")
        assert acked == sent
        assert handled == [1]  # the awaited publish's only


def test_a_paho_without_the_internals_used_is_refused_naming_its_version() -> None:
    check_paho(paho.Client(CallbackAPIVersion.VERSION2))  # the installed one has them
    with pytest.raises(MqttClientIncompatible) as err:
        check_paho(SimpleNamespace())  # type: ignore[arg-type]
    assert err.value.code == "mqtt_client_incompatible"
    for text in (err.value.message, err.value.message_en):
        assert f"paho-mqtt {paho_version}" in text and "_in_packet" in text


async def test_over_tls_bursts_large_messages_and_a_command_arrive_whole(tmp_path: Path, hall_id: str) -> None:
    """Over TLS a read returns one record's bytes and may leave more decrypted in the TLS layer
    (not visible to the loop's poll); a large write may be refused until the socket has room."""
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    port = free_port()
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(
        tmp_path / "broker",
        extra=(
            f"listener {port} 127.0.0.1\n"
            f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        ),
    )
    broker.start()
    topic, cmd = f"test/{hall_id}/event", f"test/{hall_id}/cmd/ticket/issue"
    acked: list[int] = []
    tls = aiomqtt.TLSParameters(ca_certs=str(pki / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    try:
        async with (
            listen(broker.url, topic) as sub,
            PipelinedClient("127.0.0.1", port, tls_params=tls, on_acked=acked.append) as client,
        ):
            await client.subscribe(cmd, qos=1)
            payloads = [(b"%d:" % i) + bytes(1024 * 1024 if i % 20 == 7 else 10) for i in range(60)]
            sent = [client.publish_nowait(topic, p, 1, False) for p in payloads]
            command = json.dumps({"category": "A", "pad": "y" * 100_000})
            async with aiomqtt.Client("127.0.0.1", broker.port) as other:
                await other.publish(cmd, command, qos=1)
            async with asyncio.timeout(15):
                message = await anext(aiter(client.messages))
            assert message.topic.value == cmd and message.payload == command.encode()
            await until(lambda: len(acked) == 60, timeout=15, what="60 PUBACKs over TLS")
            assert acked == sent
            await sub.wait_for(lambda m: m.topic.value == topic and bytes(m.payload).startswith(b"59:"), timeout=15)
            assert [bytes(m.payload) for m in sub.messages if m.topic.value == topic] == payloads
            assert paho_settled(client)
    finally:
        broker.stop()
