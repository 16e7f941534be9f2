"""The MQTT component: the hall's integration bus for screens, HVAC and Home Assistant.

It owns the one aiomqtt client; nothing else in hallctl touches the connection.
Design choices and why:

* **Reconnect loop around ``async with client``** (aiomqtt's own advice), with
  exponential backoff and full jitter so forty halls that lost the same central
  broker do not all knock on its door in the same second.
* **State is retained and rebuilt, not queued.** On every connect the component
  republishes ``online``, the HA discovery configs and the service's snapshot, so
  a screen that connects late, or after the broker lost its memory, sees the
  present at once. Topics that the present config no longer produces are cleared
  with an empty retained message (tracked in the ``mqtt_retained`` table).
* **Events go out in order, at least once, pipelined.** The bus handler never waits
  for the broker: it publishes the event at once when nothing older waits, else
  appends it to an ordered tail in memory that the session's sender publishes, in
  both cases without waiting for the previous PUBACK (paho keeps the message ids and
  an in-flight window of 20), and without a task per message
  (:meth:`hallctl.mqtt.pipeline.PipelinedClient.publish_nowait`). An event counts as
  delivered only when its PUBACK arrived. When the link goes, every event not yet
  acknowledged is moved to the on-disk outbox in order (sent ones first), and events
  that arrive without a link join it behind them; after reconnect the sender delivers
  the outbox (in ``seq`` order, a batch in flight at a time) before anything newer.
  Invariant: every outbox row is older than every event in memory.
* **Retained state is coalesced per tick.** State topics are staged, one message per
  topic, whose payload a newer state replaces until the sender's next pass; the last
  state is never dropped. Without a link they are not queued: the connect's snapshot
  is the present. Event topics are never coalesced.
* **Serialised once.** Payloads are the event's shared wire JSON
  (:meth:`hallctl.events.Event.wire_json`, also the SSE/WebSocket text) unless MQTT
  strips a field (:data:`hallctl.mqtt.topics.STRIPPED_FIELDS`).
* **Commands use the same table as the HTTP API** (:func:`hallctl.commands.dispatch`,
  topics generated from it) with an admin principal: who may publish which
  ``cmd/...`` topic is the broker ACL's job (``config/mosquitto/acl``). Replies
  are the MQTT transport's, so fields a command marks as personal (the holder of
  a QR lookup) are always masked, even for the admin principal. Replies go to the MQTT 5 response topic
  with its correlation data, or to the payload's ``reply_to`` with its
  ``request_id`` (3.1.1). A repeated request id within ``command_dedupe_s`` gets
  the first reply again instead of a second ticket.
* **Replies only into ``<root>/reply/<client>/...``**: a command whose reply topic is
  anywhere else is not executed (logged, counted in ``refused``). **Retained
  commands never run**: the cmd subscription asks MQTT 5 brokers for the retain
  flag as published and for no retained copies at subscribe; whatever still
  arrives flagged retained is refused (``retained_command``), and an empty
  payload (clearing a retained command) is ignored silently. A command whose
  MQTT 5 Message Expiry Interval ran out while it waited in the daemon is not
  executed (``command_expired``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import ssl
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hallctl import __version__
from hallctl import events as ev
from hallctl.bus import Subscription
from hallctl.commands import MQTT, Call, CommandError, dispatch, merge_args
from hallctl.context import HallContext
from hallctl.errors import HallctlError, MqttUnavailable
from hallctl.mqtt import discovery
from hallctl.mqtt.acl import kiosk_scope
from hallctl.mqtt.broker import MosquittoBroker
from hallctl.mqtt.commands import (
    MQTT_PRINCIPAL,
    command_for_topic,
    error_reply,
    expired,
    json_object,
    payload_bytes,
    reply_topic_allowed,
    reply_topic_refusal,
)
from hallctl.mqtt.connection import Connection, Target, backoff_delay, target_for
from hallctl.mqtt.outbox import Outbox
from hallctl.mqtt.pipeline import PipelinedClient
from hallctl.mqtt.topics import Outgoing, route
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Live edits of these sections change no discovery config or retained topic (staff names and
# photos, the calendar): no republish for them.
UNDISCOVERED_SECTIONS = frozenset({"staff", "staff_photo", "calendar"})
V5 = aiomqtt.ProtocolVersion.V5

PUBLISH_TIMEOUT_S = 10.0
FLUSH_BATCH = 200
MAX_PENDING = 1000  # events in memory (sent, not yet acknowledged, or unsent) before the bus handler waits
RETAINED_LOGGED_MAX = 1000


@dataclasses.dataclass(slots=True)
class Pending:
    """One message of the ordered tail: ``mid`` is its publish's message id once sent, ``acked`` its PUBACK."""

    topic: str
    payload: str
    qos: int
    retain: bool
    mid: int | None = None
    acked: bool = False
    sent_at: float = 0.0  # time.monotonic() of the publish, for the PUBACK watchdog


class StampedQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's queue of incoming messages, noting when each arrived (for MQTT 5 message expiry).

    Messages leave in order, so ``last_arrived`` is the arrival time of the message the
    ``async for`` over ``client.messages`` has just yielded.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._arrived: dict[int, float] = {}
        self.last_arrived = time.monotonic()

    def _put(self, item: aiomqtt.Message) -> None:
        self._arrived[id(item)] = time.monotonic()
        super()._put(item)

    def _get(self) -> aiomqtt.Message:
        item = super()._get()
        self.last_arrived = self._arrived.pop(id(item), time.monotonic())
        return item


class MqttBridge:
    """The MQTT component (see the module docstring for the design)."""

    name = "mqtt"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.root = discovery.root(ctx.cfg)
        self.status_topic = discovery.status_topic(ctx.cfg)
        self.broker: MosquittoBroker | None = (
            MosquittoBroker(ctx.cfg, ctx.state_dir) if ctx.cfg.mqtt.url is None else None
        )
        self.outbox = Outbox(ctx.store, ctx.cfg.mqtt.outbox_max)
        self.target: Target | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()  # guards the order decision: memory tail, outbox, spill
        self._wake = asyncio.Event()
        # The ordered tail in memory: sent and waiting for their PUBACK, then not yet sent.
        self._unacked: collections.deque[Pending] = collections.deque()
        self._unsent: collections.deque[Pending] = collections.deque()  # events only
        self._by_mid: dict[int, Pending] = {}  # the sent ones of this session's client not yet acknowledged
        self._staged: dict[str, Pending] = {}  # state topic → its unsent message (coalescing)
        self._in_memory = 0  # events (not state) in the two deques
        self._ack_error: BaseException | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self.coalesced = 0  # state publishes saved: a newer payload replaced an unsent one
        self._first_connect = asyncio.Event()
        self._up = asyncio.Event()  # set while a session is live (for publish_device)
        # Other components (climate units on MQTT) publish through this bridge, never with their own client.
        ctx.mqtt_publisher = self.publish_device
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._replies: dict[str, tuple[float, bytes]] = {}
        self._started = False
        self.sent = 0
        self.connects = 0
        self.commands = 0
        self.refused = 0  # refused unhandled: too large, not JSON, too deep, bad request fields, reply topic, retained
        self.expired = 0  # MQTT 5 commands whose message expiry ran out before they were handled
        self._retained_logged: set[str] = set()
        self._incoming: StampedQueue | None = None
        self.failed = 0  # messages whose handling raised unexpectedly (logged with traceback)
        self.shed = 0  # expendable messages (sensor readings) dropped unread under a backlog
        self.subscribe_failures = 0
        self._unsubscribed: list[str] = []  # filters the broker (or the client library) refused this session
        self.last_error: str | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        port = await self.broker.start() if self.broker is not None else None
        login = (self.broker.username, self.broker.password) if self.broker is not None else None
        self.target = target_for(self.cfg, port, login)
        self.ctx.mqtt_broker = (self.target.host, self.target.port)
        self.ctx.mqtt_broker_known.set()
        try:
            pending = await self.outbox.load()
        except BaseException:
            if self.broker is not None:  # stop() will not run for a component that did not start
                await self.broker.stop()
            raise
        if pending:
            log.info("mqtt outbox: %d events from an earlier run wait for the broker", pending)
        self._sub = self.ctx.bus.subscribe("mqtt", self._on_event)
        self._task = asyncio.create_task(self._run(), name="hallctl.mqtt.connection")
        self._started = True
        self.ctx.report_health("mqtt", self.health)
        # Give the first connect a moment so `online` and the snapshot are out when start() returns;
        # an unreachable broker must not hold up the hall, so this is bounded.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await self._first_connect.wait()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                async with asyncio.timeout(5.0):
                    await sub.queue.join()  # what the service already published goes out or into the outbox
            except TimeoutError:
                log.warning("mqtt: %d events not handed over at stop", sub.queue.qsize())
            await self.ctx.bus.unsubscribe(sub)
            # What is in flight gets its PUBACK, or goes to the outbox below when the session ends.
            if self._conn is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await self._drained.wait()
        conn = self._conn
        if conn is not None:
            try:
                async with asyncio.timeout(2.0):
                    await conn.client.publish(self.status_topic, "offline", qos=1, retain=True)
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.info("mqtt: could not announce offline at stop: %s", exc)
        task, self._task = self._task, None
        await cancel_and_wait(task)
        async with self._lock:
            await self._spill()
        if self.broker is not None:
            await self.broker.stop()
        self.ctx.forget_health("mqtt")

    async def publish_device(self, topic: str, payload: str, timeout: float) -> None:
        """A message to a device on the hall's broker (QoS 1, not retained): what ``ctx.publish_mqtt`` calls.

        Waits up to ``timeout`` for a live session (the daemon's first seconds, a reconnect), then
        publishes once; not kept in the outbox: a device command is stale by the next tick, which
        sends it again. :class:`MqttUnavailable` when there is no link or the publish fails.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
                conn = self._conn
                if conn is None:
                    raise MqttUnavailable("mqtt_unavailable", "MQTT连接中断", "MQTT link lost")
                await self._publish(conn, topic, payload, qos=1)
        except TimeoutError as exc:
            raise MqttUnavailable(
                "mqtt_unavailable", f"{timeout:g}秒内未连上MQTT", f"no MQTT link within {timeout:g} s"
            ) from exc
        except aiomqtt.MqttError as exc:
            raise MqttUnavailable("mqtt_unavailable", f"MQTT发送失败：{exc}", f"publish failed: {exc}") from exc

    def health(self) -> dict[str, Any]:
        connected = self._conn is not None
        return {
            "ok": connected,
            "url": self.target.display_url if self.target else None,
            "connected": connected,
            "embedded": self.broker is not None,
            "broker": self.broker.health() if self.broker is not None else None,
            "protocol": ("5" if self.target.protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1")
            if self.target
            else None,
            "outbox": self.outbox.size,
            "dropped": self.outbox.dropped,
            "sent": self.sent,
            "in_flight": len(self._unacked),
            "coalesced": self.coalesced,
            "connects": self.connects,
            "commands": self.commands,
            "refused": self.refused,
            "expired": self.expired,
            "failed": self.failed,
            "shed": self.shed,
            "backlog": self._incoming.qsize() if self._incoming is not None and connected else 0,
            "subscribe_failures": self.subscribe_failures,
            "unsubscribed": list(self._unsubscribed),
            "last_error": self.last_error,
        }

    # ---- connection ----------------------------------------------------------------------

    def _client(self) -> PipelinedClient:
        t = self.target
        assert t is not None
        m = self.cfg.mqtt
        tls_params = None
        if t.tls:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=m.ca_file, certfile=m.cert_file, keyfile=m.key_file, cert_reqs=ssl.CERT_REQUIRED
            )
        bridge = self
        # One table of message ids per client (paho numbers from 1 again in each): a PUBACK an old
        # client still reads can never be taken for a new session's message with the same id.
        by_mid = self._by_mid = {}

        class Incoming(StampedQueue):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(maxsize)
                bridge._incoming = self

        client = PipelinedClient(
            t.host,
            t.port,
            username=t.username,
            password=t.password,
            identifier=m.client_id or f"hallctl-{self.cfg.hall.id}",
            protocol=t.protocol,
            will=aiomqtt.Will(self.status_topic, "offline", qos=1, retain=True),
            keepalive=m.keepalive,
            timeout=PUBLISH_TIMEOUT_S,
            tls_params=tls_params,
            tls_insecure=m.tls_insecure if t.tls else None,
            clean_session=True if t.protocol != aiomqtt.ProtocolVersion.V5 else None,
            queue_type=Incoming,
            on_acked=lambda mid: self._acked(by_mid, mid),
        )
        # Many publishes waiting for their PUBACK is the design (the in-flight window), not a
        # concern to warn about on every publish: warn only past what the bridge itself allows.
        client.pending_calls_threshold = MAX_PENDING + FLUSH_BATCH
        return client

    async def _run(self) -> None:
        attempt = 0
        m = self.cfg.mqtt
        while True:
            try:
                async with self._client() as client:
                    attempt = 0
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                log.warning("mqtt: %s unreachable or lost: %s", self.target.display_url if self.target else "?", exc)
            except HallctlError as exc:  # the store refused an outbox or topic-table write
                self.last_error = f"{exc.code}: {exc.message}"
                log.error("mqtt: session ended by a store error: %s", exc.code)
            except Exception as exc:  # a bug must cost a reconnect, never the MQTT component for good
                self.last_error = f"session failed: {exc!r}"[:300]
                log.exception("mqtt: session failed unexpectedly")
            # The first attempt is over: start() waits no longer (a broker down at boot held up
            # serving for the whole 3 s bound, past issue 12's 2 s from kill -9 to serving).
            self._first_connect.set()
            delay = backoff_delay(attempt, m.reconnect_min_s, m.reconnect_max_s)
            attempt += 1
            log.info("mqtt: reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    def _filters(self) -> list[str]:
        topics = [f"{self.root}/cmd/#", *self.ctx.mqtt_handlers]
        if self.cfg.mqtt.discovery:
            topics.append(f"{self.cfg.mqtt.discovery_prefix}/status")
        return topics

    async def _subscribe(self, client: aiomqtt.Client, topics: list[str]) -> list[str]:
        """Subscribe to each filter on its own; the ones refused (client-side or in the SUBACK) come back.

        A refusal is logged, counted and shown in health's ``last_error``; the session
        goes on with what was granted and the refused filters are retried with backoff.
        """
        refused: list[str] = []
        for topic in topics:
            reason = ""
            options = None
            if topic == f"{self.root}/cmd/#" and self.target is not None and self.target.protocol == V5:
                # The retain flag as published (a live retained command is seen as one) and no
                # retained copies at subscribe (a retained command never reaches us at reconnect).
                options = SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=2)
            try:
                if options is not None:  # paho takes the QoS from the options then, and refuses both
                    codes = await client.subscribe(topic, options=options)
                else:
                    # Expendable readings at QoS 0, as zigbee2mqtt publishes them: no PUBACK to
                    # send per reading (half the socket writes of a reading flood); the next reading
                    # replaces one lost with a dropped connection anyway.
                    codes = await client.subscribe(topic, qos=0 if topic in self.ctx.mqtt_shed else 1)
                bad = [c for c in codes if (c.value if isinstance(c, ReasonCode) else int(c)) >= 0x80]
                if bad:
                    reason = f"broker answered {bad[0]}"
            except ValueError as exc:  # paho refuses an invalid filter before sending it
                reason = str(exc)
            if reason:
                refused.append(topic)
                self.subscribe_failures += 1
                self.last_error = f"subscribe refused: {topic} ({reason})"
                log.error("mqtt: subscribe refused: %s (%s); retrying with backoff", topic, reason)
        return refused

    async def _resubscribe(self, client: aiomqtt.Client) -> None:
        attempt = 0
        m = self.cfg.mqtt
        while self._unsubscribed:
            await asyncio.sleep(backoff_delay(attempt, m.reconnect_min_s, m.reconnect_max_s))
            attempt += 1
            self._unsubscribed = await self._subscribe(client, self._unsubscribed)
            if not self._unsubscribed:
                log.info("mqtt: all subscriptions granted after %d retries", attempt)
                self.last_error = None

    async def _session(self, client: PipelinedClient) -> None:
        conn = Connection(client)
        self._unsubscribed = await self._subscribe(client, self._filters())
        await client.publish(self.status_topic, "online", qos=1, retain=True)
        async with self._lock:
            self._ack_error = None
            self._staged.clear()  # the snapshot below is newer than anything staged while away
            await self._republish(conn)
            self._conn = conn
            self._up.set()
        self.connects += 1
        if not self._unsubscribed:
            self.last_error = None
        log.info(
            "mqtt: connected to %s as %s (MQTT %s); %d events in the outbox",
            self.target.display_url if self.target else "?",
            self.cfg.mqtt.client_id or f"hallctl-{self.cfg.hall.id}",
            self.health()["protocol"],
            self.outbox.size,
        )
        self._first_connect.set()
        self._wake.set()
        recv = asyncio.create_task(self._receive(conn), name="hallctl.mqtt.receive")
        flush = asyncio.create_task(self._send(conn), name="hallctl.mqtt.send")
        resub = asyncio.create_task(self._resubscribe(client), name="hallctl.mqtt.resubscribe")
        watch = asyncio.create_task(self._watchdog(), name="hallctl.mqtt.watchdog")
        try:
            await asyncio.wait({recv, flush}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            self._conn = None
            self._up.clear()
            conn.lost.set()
            recv.cancel()
            flush.cancel()
            resub.cancel()
            results = await asyncio.gather(recv, flush, return_exceptions=True)
            await asyncio.gather(resub, return_exceptions=True)
            self._count_unhandled()
            async with self._lock:
                await self._spill()
        for result in results:
            if isinstance(result, aiomqtt.MqttError | HallctlError):
                raise result
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise aiomqtt.MqttError(f"session task failed: {result!r}") from result
        raise aiomqtt.MqttError("session ended")

    async def _publish(
        self,
        conn: Connection,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish and wait for the broker's acknowledgement, failing at once if the link goes."""
        if conn.lost.is_set():
            raise aiomqtt.MqttError("connection lost")
        pub = asyncio.create_task(
            conn.client.publish(topic, payload, qos=qos, retain=retain, properties=properties),
            name="hallctl.mqtt.publish",
        )
        lost = asyncio.create_task(conn.lost.wait(), name="hallctl.mqtt.lost")
        try:
            await asyncio.wait({pub, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not pub.done():
                pub.cancel()
            await asyncio.gather(pub, lost, return_exceptions=True)
        if pub.cancelled():
            raise aiomqtt.MqttError("connection lost before the broker acknowledged")
        pub.result()

    # ---- state, discovery and cleanup at connect ---------------------------------------

    async def _republish(self, conn: Connection) -> None:
        wanted: dict[str, str] = {}
        if self.cfg.mqtt.discovery:
            for topic, payload in discovery.discovery_messages(self.cfg, version=__version__):
                await self._publish(conn, topic, payload, retain=True)
                wanted[topic] = "discovery"
        for topic in discovery.state_topics(self.cfg):
            wanted[topic] = "state"
        for event in self.ctx.snapshot():
            out = route(self.root, event)
            if out is not None:
                await self._publish(conn, out.topic, out.payload, qos=out.qos, retain=True)
                wanted.setdefault(out.topic, "state")
        previous = await self.ctx.store.retained_topics()
        for topic in sorted(previous - wanted.keys()):
            await self._publish(conn, topic, b"", retain=True)
            log.info("mqtt: cleared retained %s (no longer in the config)", topic)
        await self.ctx.store.replace_retained_topics(wanted, datetime.now(UTC))

    async def _rediscover(self) -> None:
        """A live edit (admin console): discovery and retained topics follow the new config now.

        Home Assistant sees a new window or category at once, and a removed one's entities and
        retained state are cleared, instead of at the next reconnect or restart. Without a link
        the next session's :meth:`_republish` uses the new config anyway.
        """
        self.cfg = self.ctx.cfg
        async with self._lock:
            conn = self._conn
            if conn is not None:
                await self._republish(conn)

    # ---- outgoing events -------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> Awaitable[None] | None:
        """Hand one bus event to the ordered sender without waiting for the broker.

        State topics are staged (the latest payload per topic wins until the sender runs).
        An event is published at once when nothing older waits (no unsent event, empty
        outbox); otherwise it joins the unsent tail behind them; without a link and with
        nothing in memory it goes straight to the outbox. Every event row in the outbox is
        older than every event in memory, so the order survives any mix of outages.

        The common case (linked, nothing older waiting, room in memory, the lock free) is
        done here without a coroutine or the lock: nothing in it waits, so no other holder
        of the lock could run in between (issue 12: once per ticket). Everything else goes
        through :meth:`_enqueue`, under the lock, as before.
        """
        if isinstance(event, ev.ConfigChanged) and not set(event.sections) <= UNDISCOVERED_SECTIONS:
            return self._rediscover_then(event)
        out = route(self.root, event)
        if out is None:
            return None
        if out.retain:
            self._stage_state(out.topic, out.payload, out.qos)
            return None
        conn = self._conn
        if (
            conn is not None
            and not self._unsent
            and self.outbox.size == 0
            and self._in_memory + 1 < MAX_PENDING
            and not self._lock.locked()
        ):
            self._in_memory += 1
            self._drained.clear()
            self._publish_now(conn, Pending(out.topic, out.payload, out.qos, False))
            return None
        return self._enqueue(out, event.wire_name)

    async def _rediscover_then(self, event: ev.Event) -> None:
        await self._rediscover()
        out = route(self.root, event)
        if out is None:
            return
        if out.retain:
            self._stage_state(out.topic, out.payload, out.qos)
            return
        await self._enqueue(out, event.wire_name)

    async def _enqueue(self, out: Outgoing, what: str) -> None:
        """An event, under the lock: out now, behind the unsent tail, or to the outbox (see :meth:`_on_event`)."""
        async with self._lock:
            conn = self._conn
            if conn is None and not self._in_memory:
                await self._to_outbox(out.topic, out.payload, out.qos, what)
                return
            item = Pending(out.topic, out.payload, out.qos, False)
            self._in_memory += 1
            self._drained.clear()
            if conn is not None and not self._unsent and self.outbox.size == 0:
                self._publish_now(conn, item)  # nothing older waits: out at once, one hop less
            else:
                self._unsent.append(item)
                self._wake.set()
                if conn is None:  # the session just ended: what it left goes to disk first
                    await self._spill()
                elif self._in_memory >= MAX_PENDING and self.outbox.size > 0 and self._nothing_in_flight():
                    # The outbox flush is behind a long outage: the newest wait on disk, behind it.
                    await self._spill(unsent_only=True)
        if self._in_memory >= MAX_PENDING and self._conn is not None:
            # Backpressure: the broker is slower than the hall; hold the bus queue, never drop here.
            self._room.clear()
            await self._room.wait()

    def _nothing_in_flight(self) -> bool:
        """No event is in flight (then the unsent ones may join the outbox without passing one)."""
        return all(p.retain for p in self._unacked)

    def _publish_now(self, conn: Connection, item: Pending) -> None:
        """Hand one message to paho now (:meth:`PipelinedClient.publish_nowait`): numbered and sent in call order.

        No task, future or timer per message: the PUBACK comes back through :meth:`_acked` by
        its message id, and the window's head is watched by one timer per session
        (:meth:`_watch_acks`). A publish paho refuses at once (the link just went) ends the
        session like a lost PUBACK: the message stays in the window and goes to the outbox.
        """
        client = conn.client
        assert isinstance(client, PipelinedClient)
        item.sent_at = time.monotonic()
        self._unacked.append(item)
        try:
            item.mid = client.publish_nowait(item.topic, item.payload, item.qos, item.retain)
        except aiomqtt.MqttError as exc:
            if self._ack_error is None:
                self._ack_error = exc
            self._wake.set()
            return
        self._by_mid[item.mid] = item

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_TIMEOUT_S / 4)  # a periodic check, not synchronisation
            self._watch_acks()

    def _watch_acks(self) -> None:
        """The oldest publish in flight waited ``PUBLISH_TIMEOUT_S`` for its PUBACK: end the session, as a timeout did.

        Runs every ``PUBLISH_TIMEOUT_S / 4`` while connected, so a stuck broker is noticed
        within 1.25 × ``PUBLISH_TIMEOUT_S``; the unacknowledged events go to the outbox and are
        sent again, in order, after the reconnect.
        """
        head = self._unacked[0] if self._unacked else None
        if (
            head is not None
            and not head.acked
            and time.monotonic() - head.sent_at >= PUBLISH_TIMEOUT_S
            and self._ack_error is None
        ):
            self._ack_error = TimeoutError(f"no PUBACK within {PUBLISH_TIMEOUT_S:.0f} s")
            self._wake.set()

    def _stage_state(self, topic: str, payload: str, qos: int) -> None:
        """Coalesce retained state: one publish per topic per sender pass, always the latest payload.

        While there is no link the latest state per topic waits here too (bounded by the
        number of state topics); the connect drops it and republishes the snapshot instead.
        """
        staged = self._staged.get(topic)
        if staged is not None:
            staged.payload = payload
            self.coalesced += 1
            return
        self._staged[topic] = Pending(topic, payload, qos, True)
        self._drained.clear()
        self._wake.set()

    async def _to_outbox(self, topic: str, payload: str, qos: int, what: str) -> None:
        try:
            await self.outbox.append(topic, payload, qos)
        except HallctlError as exc:
            self.outbox.dropped += 1
            log.error("mqtt: %s lost, the outbox could not store it: %s", what, exc.code)

    async def _spill(self, *, unsent_only: bool = False) -> None:
        """With the lock held: events not acknowledged go to the outbox, in order.

        Without a link (the default) that is every event in memory: the ones sent but not
        acknowledged first (they are older), then the unsent; staged state is dropped, the
        snapshot at the next connect carries the present. With ``unsent_only`` (connected,
        nothing in flight) only the unsent events move, behind the rows already waiting.
        """
        if unsent_only:
            items = list(self._unsent)
            self._unsent.clear()
        else:
            items = [p for p in (*self._unacked, *self._unsent) if not p.retain]
            self._unacked.clear()
            self._by_mid.clear()  # a PUBACK still read for one of them is ignored (sent again: at least once)
            self._unsent.clear()
            self._staged.clear()
        self._in_memory -= len(items)
        if items and not unsent_only:
            log.info("mqtt: %d events not acknowledged go to the outbox", len(items))
        for p in items:
            await self._to_outbox(p.topic, p.payload, p.qos, p.topic.rsplit("/", 1)[-1])
        if not self._unacked and not self._unsent and not self._staged:
            self._drained.set()
        self._room.set()

    async def _send(self, conn: Connection) -> None:
        """The session's one sender: the outbox first (older), then the in-memory tail, pipelined."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._ack_error is not None:
                error, self._ack_error = self._ack_error, None
                raise aiomqtt.MqttError(f"publish not acknowledged: {error}") from error
            await self._flush(conn)
            while self._unsent:
                self._publish_now(conn, self._unsent.popleft())
            staged, self._staged = self._staged, {}
            for item in staged.values():
                self._publish_now(conn, item)

    def _acked(self, by_mid: dict[int, Pending], mid: int) -> None:
        """A PUBACK (paho's callback, in the loop): the acknowledged head of the window counts as delivered.

        ``by_mid`` is the table of the client that read it. An id not in it (a late PUBACK
        after the session's events went to the outbox) is ignored: those events are sent
        again, at least once.
        """
        item = by_mid.pop(mid, None)
        if item is None:
            return
        item.acked = True
        while self._unacked and self._unacked[0].acked:
            item = self._unacked.popleft()
            if not item.retain:
                self.sent += 1
                self._in_memory -= 1
        if self._in_memory < MAX_PENDING:
            self._room.set()
        if not self._unacked and not self._unsent and not self._staged:
            self._drained.set()

    async def _flush(self, conn: Connection) -> None:
        """Deliver the outbox in ``seq`` order, a batch in flight at a time; rows leave once acknowledged."""
        while self.outbox.size > 0:
            async with self._lock:
                rows = await self.outbox.peek(FLUSH_BATCH)
            if not rows:
                return
            acks = [
                asyncio.create_task(conn.client.publish(row.topic, row.payload, qos=row.qos), name="hallctl.mqtt.flush")
                for row in rows
            ]
            done: int | None = None
            try:
                for row, ack in zip(rows, acks, strict=True):
                    await self._acknowledged(conn, ack)
                    done = row.seq
                    self.sent += 1
            finally:
                for ack in acks:
                    ack.cancel()
                await asyncio.gather(*acks, return_exceptions=True)
                if done is not None:
                    async with self._lock:
                        await self.outbox.remove_through(done)
            log.info("mqtt outbox: delivered %d, %d left", len(rows), self.outbox.size)

    @staticmethod
    async def _acknowledged(conn: Connection, ack: asyncio.Task[None]) -> None:
        """Wait for one publish's PUBACK, failing at once if the link goes."""
        if not ack.done():
            lost = asyncio.create_task(conn.lost.wait(), name="hallctl.mqtt.lost")
            try:
                await asyncio.wait({ack, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                await asyncio.gather(lost, return_exceptions=True)
        if not ack.done() or ack.cancelled():
            raise aiomqtt.MqttError("connection lost before the broker acknowledged")
        ack.result()

    # ---- incoming ----------------------------------------------------------------------------

    def _count_unhandled(self) -> None:
        """Messages the session received but did not handle (it ended): counted, never dropped silently.

        Expendable ones (sensor readings) go to their owner's count like a shed message;
        commands are only logged (their senders time out and retry).
        """
        q = self._incoming
        if q is None:
            return
        shed = commands = 0
        while not q.empty():
            message = q.get_nowait()
            topic = message.topic.value
            if (on_shed := self.ctx.mqtt_shed.get(topic)) is not None:
                on_shed(topic)
                shed += 1
            else:
                commands += 1
        self.shed += shed
        if shed or commands:
            log.warning(
                "mqtt: session ended with %d reading messages (counted as shed) and %d other messages unhandled",
                shed,
                commands,
            )

    async def _receive(self, conn: Connection) -> None:
        cmd_prefix = f"{self.root}/cmd/"
        ha_status = f"{self.cfg.mqtt.discovery_prefix}/status"
        shed = self.ctx.mqtt_shed
        max_backlog = self.cfg.sensors.max_backlog
        async for message in conn.client.messages:
            topic = message.topic.value
            # Expendable messages (sensor readings) behind a long backlog are dropped unread and
            # counted by their owner: a reading flood must never stand between a command and us.
            if (
                (on_shed := shed.get(topic)) is not None
                and self._incoming is not None
                and self._incoming.qsize() > max_backlog
            ):
                self.shed += 1
                on_shed(topic)
                continue
            try:
                await self._handle(conn, message, cmd_prefix, ha_status)
            except aiomqtt.MqttError:
                raise  # the link itself is gone: that ends the session
            except HallctlError as exc:  # e.g. the store refused a sensor reading: this message only
                self.failed += 1
                log.warning("mqtt: message on %s not handled: %s: %s", topic[:200], exc.code, exc.message)
            except Exception:  # one message must never end the session: log it, count it, go on
                self.failed += 1
                log.exception("mqtt: handling a message on %s failed", topic[:200])

    async def _handle(self, conn: Connection, message: aiomqtt.Message, cmd_prefix: str, ha_status: str) -> None:
        topic = message.topic.value
        if topic.startswith(cmd_prefix):
            if not payload_bytes(message.payload):
                return  # an empty payload clears a retained command: nothing to do, nothing to say
            if message.retain:
                await self._retained_command(conn, message)
                return
            arrived = self._incoming.last_arrived if self._incoming is not None else time.monotonic()
            await self._command(conn, message, arrived)
        elif (handler := self.ctx.mqtt_handlers.get(topic)) is not None:
            raw = payload_bytes(message.payload)
            if len(raw) > self.cfg.mqtt.max_payload_bytes:
                self.refused += 1
                log.warning("mqtt: refused a %d-byte message on %s (max_payload_bytes)", len(raw), topic)
                return
            await handler(topic, raw)
        elif topic == ha_status and message.payload in (b"online", "online"):
            log.info("mqtt: Home Assistant came online; republishing discovery")
            async with self._lock:
                for t, p in discovery.discovery_messages(self.cfg, version=__version__):
                    await self._publish(conn, t, p, retain=True)

    async def _retained_command(self, conn: Connection, message: aiomqtt.Message) -> None:
        """A command published with retain: never executed (its copy would run again at every reconnect)."""
        self.refused += 1
        topic = message.topic.value
        if topic not in self._retained_logged and len(self._retained_logged) < RETAINED_LOGGED_MAX:
            self._retained_logged.add(topic)
            log.error("mqtt: refused a retained command on %s; publish commands without retain", topic[:200])
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        request_id = None
        with contextlib.suppress(CommandError):
            body = json_object(message.payload, self.cfg.mqtt.max_payload_bytes)
            if response_topic is None and isinstance(body.get("reply_to"), str):
                response_topic = body["reply_to"]
            raw_id = body.get("request_id")
            if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and len(str(raw_id)) <= 128:
                request_id = str(raw_id)
        if response_topic is not None and reply_topic_allowed(self.root, response_topic):
            err = CommandError(
                "retained_command", "命令不能带保留标志发布", "commands must be published without the retain flag"
            )
            await self._reply(conn, response_topic, correlation, request_id, error_reply(err))

    async def _command(self, conn: Connection, message: aiomqtt.Message, arrived: float) -> None:
        self.commands += 1
        topic = message.topic.value
        props = message.properties
        response_topic: str | None = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation: bytes | None = getattr(props, "CorrelationData", None) if props is not None else None
        expiry: int | None = getattr(props, "MessageExpiryInterval", None) if props is not None else None
        body: dict[str, Any] = {}
        request_id: str | None = None
        name = "?"
        try:
            body = json_object(message.payload, self.cfg.mqtt.max_payload_bytes)
            reply_to = body.pop("reply_to", None)
            raw_id = body.pop("request_id", None)
            if raw_id is not None:
                if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or len(str(raw_id)) > 128:
                    raise CommandError(
                        "invalid_arguments",
                        "request_id 须为不超过128个字符的字符串",
                        "request_id: must be a string of at most 128 characters",
                    )
                request_id = str(raw_id)
            if response_topic is None and isinstance(reply_to, str):
                response_topic = reply_to
            elif reply_to is not None and not isinstance(reply_to, str):
                raise CommandError("invalid_arguments", "reply_to 须为主题字符串", "reply_to: must be a topic string")
        except CommandError as exc:
            self.refused += 1
            log.error("mqtt command on %s refused: %s: %s", topic, exc.code, exc.message)
            await self._reply(conn, response_topic, correlation, None, error_reply(exc))
            return
        if response_topic is not None and (why := reply_topic_refusal(self.root, response_topic)) is not None:
            # Not executed: the answer has nowhere to go, and the sender asked for a place it may not have.
            self.refused += 1
            log.error(
                "mqtt command on %s refused, not executed: reply topic %r: %s",
                topic,
                response_topic[:300],
                why,
            )
            return
        if expired(expiry, arrived, time.monotonic()):
            self.expired += 1
            log.warning("mqtt command on %s not executed: its message expiry (%d s) ran out", topic, expiry)
            err = CommandError(
                "command_expired", "命令在处理前已过期", "the command's message expiry ran out before it was handled"
            )
            await self._reply(conn, response_topic, correlation, request_id, error_reply(err))
            return
        key = request_id if request_id is not None else (correlation.hex() if correlation else None)
        if key is not None:
            key = f"{topic}|{key}"
            cached = self._cached_reply(key)
            if cached is not None:
                log.info("mqtt command on %s: repeated request id, replaying the first reply", topic)
                await self._reply_raw(conn, response_topic, correlation, cached)
                return
        cache = True
        try:
            unscoped, scope = kiosk_scope(self.root, topic)  # cmd/kiosk/<id>/...: the kiosk comes from the topic
            name, from_topic = command_for_topic(self.root, unscoped)
            args = merge_args(body, {**from_topic, **scope})
            result = await dispatch(self.ctx, name, args, Call(MQTT_PRINCIPAL, MQTT))
            reply: dict[str, Any] = {"ok": True, "command": name, **result}
        except CommandError as exc:
            log.error("mqtt command on %s refused: %s: %s", topic, exc.code, exc.message)
            reply = error_reply(exc)
        except HallctlError as exc:
            log.warning("mqtt command %s on %s failed: %s: %s", name, topic, exc.code, exc.message)
            reply = error_reply(exc)
            cache = exc.http_status < 500  # a locked store is worth a retry; a refusal is not
        except Exception:  # a bug in one command must not stop the hall's MQTT link (logged with traceback)
            log.exception("mqtt command %s on %s crashed", name, topic)
            reply = {"ok": False, "error": {"code": "internal_error", "message": "internal error"}}
            cache = False
        if request_id is not None:
            reply["request_id"] = request_id
        payload = json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()
        if key is not None and cache:
            self._remember_reply(key, payload)
        await self._reply_raw(conn, response_topic, correlation, payload)

    def _cached_reply(self, key: str) -> bytes | None:
        hit = self._replies.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _remember_reply(self, key: str, payload: bytes) -> None:
        now = time.monotonic()
        if len(self._replies) > 1000:
            self._replies = {k: v for k, v in self._replies.items() if v[0] >= now}
        self._replies[key] = (now + self.cfg.mqtt.command_dedupe_s, payload)

    async def _reply(
        self,
        conn: Connection,
        topic: str | None,
        correlation: bytes | None,
        request_id: str | None,
        reply: dict[str, Any],
    ) -> None:
        if request_id is not None:
            reply["request_id"] = request_id
        await self._reply_raw(
            conn, topic, correlation, json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()
        )

    async def _reply_raw(self, conn: Connection, topic: str | None, correlation: bytes | None, payload: bytes) -> None:
        if topic is None:
            return
        if not reply_topic_allowed(self.root, topic):
            log.error("mqtt: refused to reply on %r (outside %s/reply/<client>/)", topic[:300], self.root)
            return
        props = None
        if correlation is not None and self.target is not None and self.target.protocol == aiomqtt.ProtocolVersion.V5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        try:
            await self._publish(conn, topic, payload, qos=1, properties=props)
        except aiomqtt.MqttError as exc:
            log.warning("mqtt: reply to %s lost: %s", topic, exc)
