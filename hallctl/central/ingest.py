"""The central's ingestion: MQTT in, PostgreSQL out, gaps asked for again (docs/city.md).

- **Rows** arrive on ``$share/<group>/hallctl/+/event/log``: with an MQTT 5 shared
  subscription the broker hands each row to one of the group's ingestors, so any number of
  them share the load. Rows are written in batches (``[postgres] batch_max`` rows or
  ``flush_ms``, whichever comes first), idempotently on (hall, seq).
- **Gaps** cannot be seen by one ingestor (it gets only its share of a hall's rows), so they
  are found in the database: one ingestor, the holder of a PostgreSQL advisory lock, scans
  every ``[gaps] scan_s`` for missing seqs after each hall's contiguous mark and publishes
  ``city.replay`` on ``hallctl/<hall>/cmd/city/replay`` (MQTT 5 response topic in its reply
  namespace), first after ``first_retry_s`` (the rows may be in flight through another
  ingestor), then with a doubling backoff up to ``max_retry_s``; after ``give_up_after``
  requests, or when the hall answers that the rows are gone (``first_seq``), the gap is
  recorded in ``city_lost`` and the scan moves past it. When the leader dies its lock goes
  with its connection and another ingestor takes over at its next scan.
- **The live picture** (queue, climate and energy state, status, alerts) is subscribed by
  every process without sharing (each dashboard needs every hall), kept in memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl.central.config import CentralConfig
from hallctl.central.store import CentralStore, Gap
from hallctl.citylog import LOG_EVENT, BadLogRow, EventLogRow, parse_wire
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BUFFER_MAX = 200_000  # rows held while PostgreSQL is away; beyond, dropped (the gap scan gets them back)
ALERTS_KEPT = 50  # per hall, the latest alerts for the dashboard


@dataclasses.dataclass
class HallLive:
    """What the state topics and alerts say about one hall now."""

    status: str = "unknown"
    queues: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    climate: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    energy: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    alerts: collections.deque[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=ALERTS_KEPT)
    )
    last_row_at: float | None = None  # monotonic time of the last row seen by this process


@dataclasses.dataclass
class GapState:
    asked: int = 0
    next_at: float = 0.0


class Ingestor:
    def __init__(self, cfg: CentralConfig) -> None:
        self.cfg = cfg
        self.store = CentralStore(cfg.postgres.dsn)
        self.leader_store = CentralStore(cfg.postgres.dsn)
        self.live: dict[str, HallLive] = {h.id: HallLive() for h in cfg.hall}
        self._buffer: list[tuple[str, EventLogRow]] = []
        self._buffer_wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._gaps: dict[tuple[str, int], GapState] = {}
        self._probed: dict[str, float] = {}  # hall -> monotonic time of its last tail probe
        self.probes = 0
        self._asks = 0
        self._boot = f"{time.time_ns():x}"  # a new process never repeats an earlier one's correlation ids
        self.leader = False
        self.received = 0
        self.stored = 0
        self.repeats = 0
        self.bad = 0
        self.dropped = 0
        self.replays_asked = 0
        self.gaps_open = 0
        self.lost_ranges = 0
        self.connects = 0
        self.lag_s: float | None = None  # last batch: from the row's ``at`` to its commit here
        self.last_error: str | None = None
        self.write_cpu_s = 0.0

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.connect()
        await self.store.migrate()
        today = datetime.now(UTC).date()
        ahead = self.cfg.postgres.partitions_ahead_days
        await self.store.ensure_partitions(today + timedelta(days=d) for d in range(-1, ahead + 1))
        self._tasks = [
            asyncio.create_task(self._mqtt_loop(), name="central.mqtt"),
            asyncio.create_task(self._writer(), name="central.writer"),
            asyncio.create_task(self._gap_loop(), name="central.gaps"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._buffer:  # what arrived is written before the process goes
            with contextlib.suppress(psycopg.Error):
                await self._flush()
        await self.store.close()
        await self.leader_store.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self._connected.is_set() and self.last_error is None,
            "connected": self._connected.is_set(),
            "connects": self.connects,
            "received": self.received,
            "stored": self.stored,
            "repeats": self.repeats,
            "bad": self.bad,
            "dropped": self.dropped,
            "buffered": len(self._buffer),
            "leader": self.leader,
            "gaps_open": self.gaps_open,
            "replays_asked": self.replays_asked,
            "probes": self.probes,
            "lost_ranges": self.lost_ranges,
            "lag_s": self.lag_s,
            "last_error": self.last_error,
        }

    # ---- MQTT ------------------------------------------------------------------------------

    def _filters(self) -> list[str]:
        me = self.cfg.reply_client
        return [
            f"$share/{self.cfg.central.group}/hallctl/+/event/{LOG_EVENT}",
            "hallctl/+/status",
            "hallctl/+/queue/+/state",
            "hallctl/+/climate/+/state",
            "hallctl/+/climate/+/energy",
            "hallctl/+/event/alert",
            f"hallctl/+/reply/{me}/#",
        ]

    async def _mqtt_loop(self) -> None:
        m = self.cfg.mqtt
        rest = m.url.removeprefix("mqtt://")
        login, _, hostport = rest.rpartition("@")
        user, _, password = login.partition(":")
        host, _, port = hostport.partition(":")
        delay = m.reconnect_min_s
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600  # rows queued for this ingestor survive its short restart
        while True:
            try:
                async with aiomqtt.Client(
                    host,
                    int(port or 1883),
                    username=user or None,
                    password=password or None,
                    identifier=self.cfg.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    keepalive=m.keepalive,
                    clean_start=False,
                    properties=props,
                    max_queued_incoming_messages=100_000,
                ) as client:
                    for topic in self._filters():
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self.connects += 1
                    self._connected.set()
                    delay = m.reconnect_min_s
                    log.info("central: connected to %s", hostport)
                    async for msg in client.messages:
                        self._on_message(msg.topic.value, msg.payload)
            except aiomqtt.MqttError as exc:
                self.last_error = f"mqtt: {exc}"
                log.warning("central: MQTT link lost (%s); reconnecting in %.1f s", exc, delay)
            finally:
                self._client = None
                self._connected.clear()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, m.reconnect_max_s)

    def _on_message(self, topic: str, payload: Any) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "hallctl":
            return
        hall = parts[1]
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
        if parts[2:] == ["event", LOG_EVENT]:
            self.received += 1
            try:
                row_hall, row = parse_wire(data)
            except BadLogRow as exc:
                self.bad += 1
                log.warning("central: %s: refused: %s", topic, exc)
                return
            if row_hall != hall:
                self.bad += 1
                log.warning("central: %s carries hall %r: refused", topic, row_hall)
                return
            if len(self._buffer) >= BUFFER_MAX:
                self.dropped += 1  # the gap scan asks for it again
                return
            self._buffer.append((hall, row))
            self.live.setdefault(hall, HallLive()).last_row_at = time.monotonic()
            self._buffer_wake.set()
            return
        live = self.live.setdefault(hall, HallLive())
        if parts[2:] == ["status"]:
            live.status = data.decode("utf-8", "replace")
            return
        try:
            body = json.loads(data) if data else None
        except ValueError:
            self.bad += 1
            return
        if len(parts) == 5 and parts[2] == "queue" and parts[4] == "state":
            self._keep(live.queues, parts[3], body)
        elif len(parts) == 5 and parts[2] == "climate" and parts[4] == "state":
            self._keep(live.climate, parts[3], body)
        elif len(parts) == 5 and parts[2] == "climate" and parts[4] == "energy":
            self._keep(live.energy, parts[3], body)
        elif parts[2:] == ["event", "alert"] and isinstance(body, dict):
            live.alerts.append(body)
        elif parts[2] == "reply" and isinstance(body, dict):
            self._on_reply(hall, body)

    @staticmethod
    def _keep(where: dict[str, dict[str, Any]], key: str, body: Any) -> None:
        if isinstance(body, dict):
            where[key] = body
        else:
            where.pop(key, None)  # an empty retained message: the hall no longer has it

    # ---- writing ---------------------------------------------------------------------------

    async def _writer(self) -> None:
        delay = 0.5
        while True:
            await self._buffer_wake.wait()
            if len(self._buffer) < self.cfg.postgres.batch_max:
                # Let a batch gather (bounded): one transaction for many rows.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.cfg.postgres.flush_ms / 1000):
                        while len(self._buffer) < self.cfg.postgres.batch_max:
                            self._buffer_wake.clear()
                            await self._buffer_wake.wait()
            self._buffer_wake.clear()
            try:
                while self._buffer:
                    await self._flush()
                delay = 0.5
                self.last_error = None
            except psycopg.Error as exc:
                self.last_error = f"postgres: {exc}"
                log.warning("central: PostgreSQL refused a batch (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                with contextlib.suppress(psycopg.Error):
                    await self.store.close()
                    await self.store.connect()
                self._buffer_wake.set()

    async def _flush(self) -> None:
        batch = self._buffer[: self.cfg.postgres.batch_max]
        cpu = time.process_time()
        stored = await self.store.insert(batch)
        self.write_cpu_s += time.process_time() - cpu
        del self._buffer[: len(batch)]
        self.stored += stored
        self.repeats += len(batch) - stored
        newest = max(datetime.fromisoformat(r.at) for _, r in batch)
        self.lag_s = max(0.0, (datetime.now(UTC) - newest).total_seconds())

    # ---- gaps ------------------------------------------------------------------------------

    async def _gap_loop(self) -> None:
        g = self.cfg.gaps
        while True:
            await asyncio.sleep(g.scan_s)
            try:
                if not self.leader:
                    if self.leader_store.conn_closed:
                        await self.leader_store.connect()
                    self.leader = await self.leader_store.try_lead()
                if self.leader:
                    await self._scan_once()
            except psycopg.Error as exc:
                self.leader = False
                self.last_error = f"postgres (gaps): {exc}"
                log.warning("central: gap scan failed: %s", exc)
                with contextlib.suppress(psycopg.Error):
                    await self.leader_store.close()

    async def _scan_once(self) -> None:
        g = self.cfg.gaps
        gaps, tops = await self.leader_store.scan()
        now = time.monotonic()
        for hall, top in tops.items():
            # The tail probe: rows after the highest stored one that nothing else would reveal.
            due = now - self._probed.get(hall, 0.0) >= g.tail_probe_s
            if due and await self._ask_replay(Gap(hall, top + 1, top + g.max_range), probe=True):
                self._probed[hall] = now
        open_keys = {(gap.hall, gap.from_seq) for gap in gaps}
        self._gaps = {k: v for k, v in self._gaps.items() if k in open_keys}
        self.gaps_open = len(gaps)
        for gap in gaps:
            state = self._gaps.get((gap.hall, gap.from_seq))
            if state is None:
                self._gaps[(gap.hall, gap.from_seq)] = GapState(0, now + g.first_retry_s)
                continue
            if now < state.next_at:
                continue
            if state.asked >= g.give_up_after:
                log.error("central: %s seq %d..%d never came back: lost", gap.hall, gap.from_seq, gap.to_seq)
                await self.leader_store.skip_gap(gap, "no_answer")
                self.lost_ranges += 1
                continue
            if await self._ask_replay(gap):
                state.asked += 1
            state.next_at = now + min(g.max_retry_s, g.first_retry_s * 2**state.asked)

    async def _ask_replay(self, gap: Gap, *, probe: bool = False) -> bool:
        client = self._client
        if client is None:
            return False
        to_seq = min(gap.to_seq, gap.from_seq + self.cfg.gaps.max_range - 1)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = f"hallctl/{gap.hall}/reply/{self.cfg.reply_client}/replay"
        # Unique per request: the hall answers a repeated correlation id from its dedupe cache
        # (command_dedupe_s) without running it, and a request asked again must run again.
        self._asks += 1
        props.CorrelationData = f"{self.cfg.client_id}:{self._boot}:{self._asks}".encode()
        props.MessageExpiryInterval = 60  # a request the hall sees only much later is not worth running
        payload = json.dumps({"from_seq": gap.from_seq, "to_seq": to_seq})
        try:
            await client.publish(f"hallctl/{gap.hall}/cmd/city/replay", payload, qos=1, properties=props)
        except aiomqtt.MqttError as exc:
            log.info("central: replay request for %s not sent: %s", gap.hall, exc)
            return False
        if probe:
            self.probes += 1
            return True
        self.replays_asked += 1
        log.info("central: asked %s to replay seq %d..%d", gap.hall, gap.from_seq, to_seq)
        return True

    def _on_reply(self, hall: str, body: dict[str, Any]) -> None:
        replay = body.get("replay")
        if not body.get("ok") or not isinstance(replay, dict):
            err = body.get("error")
            log.warning("central: %s refused a replay: %s", hall, err)
            return
        first, asked, last = replay.get("first_seq"), replay.get("from_seq"), replay.get("last_seq")
        if isinstance(last, int) and isinstance(asked, int) and last < asked:
            return  # a tail probe (or a range) beyond the hall's log: nothing to fill
        if isinstance(first, int) and isinstance(asked, int) and first > asked:
            # The hall no longer holds asked..first-1 (retention): stop asking for them.
            gap = Gap(hall, asked, first - 1)
            task = asyncio.create_task(self._skip(gap, "purged_at_hall"), name="central.skip")
            self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def _skip(self, gap: Gap, reason: str) -> None:
        with contextlib.suppress(psycopg.Error):
            await self.leader_store.skip_gap(gap, reason)
            self.lost_ranges += 1
