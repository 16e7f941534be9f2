"""The hall service: the only place that changes the hall's state.

Each command runs under one lock: the pure engine decides, the store commits the
decision and its event-log rows in one transaction, memory is updated, and only
then are the events published. So what the bus (and MQTT, screens, printers)
hears has always already survived a crash, and a failed write changes nothing.
Devices report to the service too (card read, key pressed, badge shown, paper
out), never to each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hallctl import engine, jsontext
from hallctl import events as ev
from hallctl.bus import Bus
from hallctl.config import Config
from hallctl.device_text import detail_zh, device_fault_text
from hallctl.engine import Decision, HallQueue, Holder, IssueRequest, Ticket, calendar
from hallctl.errors import HallctlError, NotFound, Refused
from hallctl.privacy import QrSigner, id_hash, mask_name
from hallctl.service import reconfigure, retention
from hallctl.service.calls import CallRate, CallRecord
from hallctl.service.cards import CardActions
from hallctl.service.keylock import KeyLock
from hallctl.service.outcomes import CardOffer, IssueOutcome, WindowQueue
from hallctl.service.sensors import SensorReadings
from hallctl.store import LogEntry, SensorMinute, Store, StoreHealth, TicketOutcome

log = logging.getLogger(__name__)
# The first retention pass waits this long after the start: with a year of history it holds the
# writer ≈0.1 s (a scan of the tickets and a checkpoint), and a restarted hall's first tickets
# would wait behind it (issue 12, goal 4: cold start -> serving).
RETENTION_START_DELAY_S = 10.0

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = ["CardOffer", "Clock", "HallService", "IssueOutcome", "WindowQueue", "utcnow"]


class HallService(CardActions):
    def __init__(self, cfg: Config, store: Store, bus: Bus, clock: Clock = utcnow) -> None:
        self.cfg = cfg
        self._store = store  # private: readers use the query methods below
        self.bus = bus
        self.clock = clock
        self._q = HallQueue(day=engine.business_day(clock(), cfg))  # the engine's live tables: private
        self._lock = asyncio.Lock()
        self._id_secret = b""
        self.qr: QrSigner = QrSigner(b"unset", 1)
        self._offers: dict[str, CardOffer] = {}
        self._idem_locks: dict[str, asyncio.Lock] = {}
        self._call_rate = CallRate()
        self._calls = CallRecord()
        self.devices: dict[str, ev.DeviceState] = {}
        self.sensor_readings = SensorReadings(cfg, store, bus, clock)
        # The sensors' present values and the time of each one's last reading (not its last publish).
        self.sensors: dict[str, ev.SensorState] = self.sensor_readings.present
        self.sensor_at: dict[str, datetime] = self.sensor_readings.read_at
        self._eval_timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Future[None]] = set()  # decisions applied in memory, not yet durable
        self._dirty_categories: set[str] = set()  # state to publish at the end of this loop tick
        self._dirty_windows: set[int] = set()
        self._state_pending = False
        self.started_at = clock()
        # Called with the new config under the lock by :meth:`reconfigure` (whoever holds a copy).
        self.config_listeners: list[Callable[[Config], None]] = []
        self.config_version = 0

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._id_secret = bytes.fromhex(await self._store.meta_default("id_hash_secret", lambda: secrets.token_hex(32)))
        qr_secret = bytes.fromhex(await self._store.meta_default("qr_secret", lambda: secrets.token_hex(32)))
        self.qr = QrSigner(
            qr_secret, self.cfg.privacy.qr_token_ttl_hours * 3600, clock=lambda: self.clock().timestamp()
        )
        self._q = await self._store.load_queue(engine.business_day(self.clock(), self.cfg))
        self._warn_calendar()
        await self._load_calls()
        async with self._lock:
            await self._rollover()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="hallctl.service.housekeeping"))
        self._tasks.append(asyncio.create_task(self._retention(), name="hallctl.service.retention"))
        self._tasks.append(asyncio.create_task(self._sensor_flush(), name="hallctl.service.sensor_flush"))
        self.publish_all_state()

    def _warn_calendar(self) -> None:
        """Say at start when bookings will reach past the holiday data (they are refused there)."""
        cal = self.cfg.calendar
        if not cal.statutory:
            return
        _, last = calendar.statutory_years()
        horizon = (self.clock() + timedelta(days=self.cfg.appointments.max_days_ahead)).year
        missing = [y for y in range(last + 1, horizon + 1) if y not in cal.own_years]
        if missing:
            log.warning(
                "calendar: chinese-calendar has holidays up to %s; appointments in %s are refused"
                " (calendar_no_data) until the package is updated or [calendar] own_years lists them",
                last,
                ", ".join(map(str, missing)),
            )

    async def stop(self) -> None:
        for handle in self._eval_timers.values():
            handle.cancel()
        self._eval_timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # The minutes in progress are history too: written now (a restart in the same minute merges).
        await self.sensor_readings.flush(everything=True)
        self.sensor_readings.abandon()

    # ---- the one write path -------------------------------------------------------------

    async def _rollover(self) -> None:
        d = engine.rollover(self._q, self.cfg, self.clock())
        if d is not None:
            await self._commit_locked(d)
            self._q.apply(d)  # opens the new day: earlier days' finished tickets leave memory
            self._publish(d)

    async def _commit_locked(self, d: Decision) -> None:
        """Commit ``d`` in the chain and wait for it, holding the lock (rare decisions: rollover, print results)."""
        durable = self._store.submit_decision(d)
        try:
            await asyncio.shield(durable)
        except HallctlError:
            await self._resync_locked()
            raise

    async def run(
        self,
        decide: Callable[[HallQueue, datetime], Decision],
        idempotency: Callable[[Decision], tuple[str, int, str]] | None = None,
    ) -> Decision:
        """Decide under the lock; wait for durability outside it, so decisions share the writer's commits.

        Under the lock the engine decides on the live tables, the decision is queued for the
        writer (which fixes its order) and applied to memory, so the next decision builds on
        it. The lock is released before the commit: many decisions then share one group
        commit. Events are published only once the decision is durable, in decision order
        (the writer answers a batch in its order). If a write fails, it and the decisions
        queued behind it fail (the store's chain), and memory is re-read from the database.
        """
        async with self._lock:
            await self._rollover()
            d = decide(self._q, self.clock())
            durable = self._store.submit_decision(d, idempotency=idempotency(d) if idempotency else None)
            self._q.apply(d)
            self._inflight.add(durable)
        # Published from the future, not by this task: a caller that is cancelled while waiting
        # (a client that hung up) does not take its durable ticket's events with it.
        durable.add_done_callback(lambda f: self._settled(f, d))
        try:
            await asyncio.shield(durable)
        except HallctlError:
            await self._resync()
            raise
        return d

    def _settled(self, fut: asyncio.Future[None], d: Decision) -> None:
        self._inflight.discard(fut)
        if not fut.cancelled() and fut.exception() is None:
            self._publish(d, coalesce=True)

    async def _resync(self) -> None:
        """After a failed write: wait for the writes in flight, re-read the state, accept writes again."""
        async with self._lock:
            await self._resync_locked()

    async def _resync_locked(self) -> None:
        if not self._store.chain_broken:
            return  # another failed caller resynchronised already
        if self._inflight:
            await asyncio.wait(list(self._inflight))
        self._q = await self._store.load_queue(engine.business_day(self.clock(), self.cfg))
        await self._store.reset_chain()

    def _publish(self, d: Decision, *, coalesce: bool = False) -> None:
        """Publish ``d``'s events, then the state of the categories and windows it touched.

        With ``coalesce`` (decisions answered by a group commit), the state is published once
        per loop tick for all the decisions of the batch: a batch of 50 tickets in category A
        gives 50 ``TicketIssued`` and one ``QueueState`` of A, not 50 (each is an MQTT QoS 1
        publish and a frame to every screen), and the one published is the latest.
        """
        for e in d.events:
            self.bus.publish(e)
            if isinstance(e, ev.EvaluationRequested):
                self._arm_evaluation_timeout(e.window, e.ticket_id)
            if isinstance(e, ev.EvaluationRecorded):
                self._disarm_evaluation_timeout(e.window)
            if isinstance(e, ev.TicketCalled):
                self._calls.remember(e)
                if e.recall == 0:
                    self._call_rate.note(e.category, e.at)
        self._dirty_categories |= d.touched_categories()
        self._dirty_windows |= d.touched_windows() | {t.window for t in d.tickets if t.window is not None}
        if not coalesce:
            self._publish_state()
        elif not self._state_pending:
            self._state_pending = True
            asyncio.get_running_loop().call_soon(self._publish_state)

    def _publish_state(self) -> None:
        self._state_pending = False
        cats, self._dirty_categories = self._dirty_categories, set()
        windows, self._dirty_windows = self._dirty_windows, set()
        for cat in sorted(cats):
            self.bus.publish(self.queue_state(cat))
        for w in sorted(windows):
            if self.cfg.window_by_number(w) is not None:
                self.bus.publish(self.window_state(w))

    # ---- calls: the announcement of each call, as its event said it -------------------------

    async def _load_calls(self) -> None:
        """After a restart: today's calls, rebuilt by the engine from the stored tickets.

        From the queue just loaded, which holds every ticket of the day: a second read of them
        cost ≈0.06 s of the cold start with 30,000 waiting, and read only the day's first 5,000.
        """
        day = self._q.day
        called = [
            t for t in self._q.tickets.values() if t.day == day and t.called_at is not None and t.window is not None
        ]
        for t in sorted(called, key=lambda t: (t.called_at, t.issued_at))[-self._calls.size :]:
            wcfg = self.cfg.window_by_number(t.window) if t.window is not None else None
            if wcfg is not None and t.called_at is not None:
                self._calls.remember(engine.called_event(self.cfg, t, wcfg, t.recalls, t.called_at))

    def last_call(self, ticket_id: str) -> ev.TicketCalled | None:
        """The latest call of this ticket (its announcement text), or None if it was never called."""
        return self._calls.last(ticket_id)

    def recent_calls(self, limit: int = 9) -> list[ev.TicketCalled]:
        """The latest call of each recently called ticket, newest first."""
        return self._calls.recent(limit)

    # ---- derived state -------------------------------------------------------------------

    def queue_state(self, prefix: str) -> ev.QueueState:
        cat = self.cfg.category_by_prefix(prefix)
        assert cat is not None
        now = self.clock()
        today = self._q.category_day(prefix)  # kept current by HallQueue.apply: no scan of the tickets
        return ev.QueueState(
            at=now,
            category=prefix,
            name=cat.name,
            waiting=today.waiting,
            last_issued=today.last_issued.number if today.last_issued else None,
            last_called=today.last_called.number if today.last_called else None,
            avg_wait_s=today.avg_wait_s,
            open=engine.is_open(cat, now, self.cfg),
        )

    def window_state(self, number: int) -> ev.WindowState:
        wcfg = self.cfg.window_by_number(number)
        assert wcfg is not None
        w = self._q.window(number)
        cur = self._q.tickets.get(w.current) if w.current else None
        staff = self.cfg.staff_by_id(w.staff) if w.staff else None
        return ev.WindowState(
            at=self.clock(),
            window=number,
            name=wcfg.name or f"{number}号窗口",
            state=self._q.window_state(number),
            ticket=cur.number if cur and cur.state in ("called", "serving") else None,
            staff=w.staff,
            staff_name=staff.name if staff else None,
            categories=wcfg.categories,
        )

    async def reconfigure(self, cfg: Config, sections: tuple[str, ...] = ()) -> None:
        """Take a new configuration live (admin console), checked against the running queue.

        Under the lock, so no decision sees half of it; the engine reads ``self.cfg`` at each
        decision, and ``config_listeners`` (the context, supervision) get it before anyone is told.
        """
        async with self._lock:
            reconfigure.check(self, cfg)
            self.cfg = cfg
            self.sensor_readings.cfg = cfg
            for listener in self.config_listeners:
                listener(cfg)
            self.config_version += 1
        self.bus.publish(ev.ConfigChanged(at=self.clock(), sections=sections, version=self.config_version))
        self.publish_all_state()

    def publish_all_state(self) -> None:
        for cat in self.cfg.category:
            self.bus.publish(self.queue_state(cat.prefix))
        for w in self.cfg.window:
            self.bus.publish(self.window_state(w.number))
        for d in self.devices.values():
            self.bus.publish(d)
        for s in self.sensors.values():
            self.bus.publish(s)

    def snapshot(self) -> list[ev.Event]:
        """Everything a screen needs to draw the present (the retained state)."""
        out: list[ev.Event] = [self.queue_state(c.prefix) for c in self.cfg.category]
        out += [self.window_state(w.number) for w in self.cfg.window]
        out += list(self.devices.values()) + list(self.sensors.values())
        return out

    # ---- tickets ----------------------------------------------------------------------------

    def _masked_holder(self, holder: Holder | None) -> tuple[str | None, str | None]:
        if holder is None:
            return None, None
        return mask_name(holder.name), id_hash(self._id_secret, holder.id_number)

    async def issue(
        self,
        category: str,
        *,
        channel: str = "api",
        kiosk: str | None = None,
        holder: Holder | None = None,
        priority: str | None = None,
        priority_reason: str | None = None,
        idempotency_key: str | None = None,
        render: Callable[[IssueOutcome], tuple[int, dict[str, Any]]] | None = None,
    ) -> IssueOutcome:
        """Issue a ticket. With ``idempotency_key``, a retry returns the first answer, never a second ticket."""
        return await self._idempotent(
            idempotency_key,
            lambda key: self._issue(category, channel, kiosk, holder, priority, priority_reason, key, render),
        )

    async def _idempotent(
        self, idempotency_key: str | None, issue: Callable[[str | None], Awaitable[IssueOutcome]]
    ) -> IssueOutcome:
        """Run ``issue`` once per key: a retry with the same key replays the first answer."""
        if idempotency_key is None:
            return await issue(None)
        async with self._same_key(idempotency_key):
            previous = await self._store.idempotent_response(idempotency_key)
            if previous is not None:
                return await self._replay(previous[1])
            return await issue(idempotency_key)

    def _same_key(self, idempotency_key: str) -> KeyLock:
        """Same-key requests wait for each other (a client that retried before the first answer
        arrived), so the second finds the first's stored answer instead of acting twice."""
        return KeyLock(self._idem_locks, idempotency_key)

    async def _issue(
        self,
        category: str,
        channel: str,
        kiosk: str | None,
        holder: Holder | None,
        priority: str | None,
        priority_reason: str | None,
        idempotency_key: str | None,
        render: Callable[[IssueOutcome], tuple[int, dict[str, Any]]] | None,
    ) -> IssueOutcome:
        masked, hashed = self._masked_holder(holder)
        req = IssueRequest(
            category=category,
            channel=channel,
            kiosk=kiosk,
            holder=holder,
            holder_masked=masked,
            id_hash=hashed,
            priority=priority,
            priority_reason=priority_reason,
        )

        def idem(d: Decision) -> tuple[str, int, str]:
            t, ahead, qr = d.result
            assert idempotency_key is not None and render is not None
            status, body = render(IssueOutcome(t, ahead, qr))
            return idempotency_key, status, jsontext.dumps({"ticket_id": t.id, "body": body})

        d = await self.run(
            lambda q, now: engine.issue(q, self.cfg, req, now, sign=self._sign),
            idempotency=idem if idempotency_key is not None and render is not None else None,
        )
        t, ahead, qr = d.result
        return IssueOutcome(t, ahead, qr)

    def _sign(self, ticket_id: str, at: datetime) -> str:
        """The QR signer the engine is given: the token is signed once, in the decision."""
        return self.qr.sign(ticket_id, now=at.timestamp())

    async def _replay(self, body: str) -> IssueOutcome:
        data = json.loads(body)
        t = self._q.tickets.get(data["ticket_id"]) or await self._store.ticket(data["ticket_id"])
        if t is None:
            raise NotFound("unknown_ticket", "此次请求对应的号票已不存在", "the ticket of this idempotency key is gone")
        return IssueOutcome(t, int(data["body"].get("waiting_ahead", 0)), data["body"].get("qr", ""), replayed=True)

    async def ticket(self, ticket_id: str) -> Ticket:
        t = self._q.tickets.get(ticket_id) or await self._store.ticket(ticket_id)
        if t is None:
            raise NotFound("unknown_ticket", f"没有号票{ticket_id}", f"no ticket {ticket_id}")
        return t

    async def ticket_by_qr(self, token: str) -> tuple[Ticket, Holder | None]:
        from hallctl.privacy import QrTokenError

        try:
            ticket_id = self.qr.verify(token, now=self.clock().timestamp())
        except QrTokenError as exc:
            raise Refused(exc.code, "二维码无效或已过期", str(exc)) from exc
        t = await self.ticket(ticket_id)
        holder = await self._store.holder(t.id)
        if holder is None and t.origin_id:
            holder = await self._store.holder(t.origin_id)
        return t, holder

    def waiting_ahead(self, t: Ticket) -> int:
        return engine.waiting_ahead(self._q, t) if t.state == "waiting" else 0

    def estimated_wait_s(self, t: Ticket, ahead: int | None = None) -> float | None:
        """People ahead (and this visitor) divided by how fast the category is being called now.

        The rate is the category's recent first calls (:class:`CallRate`). Until there are enough,
        each serving window is assumed to take the category's service-time target per visitor.
        ``ahead``: the count the issuing decision already made (not counted twice per ticket).
        """
        if t.state != "waiting":
            return 0.0
        cat = self.cfg.category_by_prefix(t.category)
        if cat is None:
            return None
        people = (self.waiting_ahead(t) if ahead is None else ahead) + 1
        per_call = self._call_rate.seconds_per_call(t.category, self.clock())
        if per_call is not None:
            return round(people * per_call, 1)
        serving_windows = max(1, sum(1 for w in self.cfg.window if t.category in w.categories))
        return round(people * cat.service_minutes * 60 / serving_windows, 1)

    # ---- window actions ---------------------------------------------------------------------

    async def _ticket_of(self, decide: Callable[[HallQueue, datetime], Decision]) -> Ticket:
        """Run an action whose decision's result is the ticket it touched."""
        d = await self.run(decide)
        result: Ticket = d.result
        return result

    async def call_next(self, window: int) -> Ticket | None:
        d = await self.run(lambda q, now: engine.call_next(q, self.cfg, window, now))
        result: Ticket | None = d.result
        return result

    async def call(self, window: int, number: str, *, override_by: str | None = None) -> Ticket:
        """Call a ticket by number; ``override_by`` (an admin) may call one not for this window (logged)."""
        return await self._ticket_of(
            lambda q, now: engine.call_ticket(q, self.cfg, window, number, now, override_by=override_by)
        )

    async def recall(self, window: int) -> Ticket:
        return await self._ticket_of(lambda q, now: engine.recall(q, self.cfg, window, now))

    async def start_service(self, window: int) -> Ticket:
        return await self._ticket_of(lambda q, now: engine.start(q, self.cfg, window, now))

    async def finish(self, window: int) -> Ticket:
        return await self._ticket_of(lambda q, now: engine.finish(q, self.cfg, window, now))

    async def no_show(self, window: int) -> Ticket:
        return await self._ticket_of(lambda q, now: engine.no_show(q, self.cfg, window, now))

    async def transfer(
        self, window: int, to_category: str | None, to_window: int | None, note: str | None = None
    ) -> Ticket:
        w = self._q.window(window)
        holder = await self._store.holder(w.current) if w.current else None
        return await self._ticket_of(
            lambda q, now: engine.transfer(q, self.cfg, window, to_category, to_window, now, holder=holder, note=note)
        )

    async def pause(self, window: int, paused: bool) -> None:
        await self.run(lambda q, now: engine.pause(q, self.cfg, window, now, paused))

    async def cancel(self, ticket_id: str) -> Ticket:
        return await self._ticket_of(lambda q, now: engine.cancel(q, self.cfg, ticket_id, now))

    async def sign_in(self, window: int, staff: str | None) -> None:
        if staff is not None and self.cfg.staff_by_id(staff) is None:
            raise NotFound("unknown_staff", f"没有工号为{staff}的工作人员", f"no staff member {staff}")
        await self.run(lambda q, now: engine.sign_in(q, self.cfg, window, staff, now))

    async def badge_shown(self, window: int, uid: str) -> str | None:
        """A badge at the window's reader signs its owner in (亮牌上岗); unknown badges are refused."""
        person = self.cfg.staff_by_badge(uid)
        if person is None:
            log.warning("window %s: unknown badge refused", window)
            self.bus.publish(
                ev.Alert(
                    at=self.clock(),
                    alert="unknown_badge",
                    severity="info",
                    message=f"{window}号窗口出示了未登记的工牌",
                    message_en=f"An unregistered badge was shown at window {window}",
                    subject=str(window),
                    data={"window": window},
                )
            )
            return None
        await self.sign_in(window, person.id)
        return person.id

    async def badge_removed(self, window: int) -> None:
        if self._q.window(window).staff is not None:
            await self.sign_in(window, None)

    # ---- evaluations --------------------------------------------------------------------------

    async def evaluate(
        self, window: int, level: int | None, channel: str, ticket_id: str | None = None, reasons: tuple[str, ...] = ()
    ) -> engine.Evaluation:
        d = await self.run(lambda q, now: engine.evaluate(q, self.cfg, window, level, channel, now, ticket_id, reasons))
        result: engine.Evaluation = d.result
        return result

    async def request_evaluation(self, window: int) -> Ticket:
        """The window asks the visitor to rate the ticket just served: the pads ask again."""
        return await self._ticket_of(lambda q, now: engine.request_evaluation(q, self.cfg, window, now))

    def _arm_evaluation_timeout(self, window: int, ticket_id: str) -> None:
        self._disarm_evaluation_timeout(window)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._eval_timers.pop(window, None)
            task = asyncio.create_task(
                self._record_unrated(window, ticket_id), name=f"hallctl.service.unrated.{window}"
            )
            self._tasks.append(task)
            task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

        self._eval_timers[window] = loop.call_later(self.cfg.queue.evaluation_timeout_s, fire)

    def _disarm_evaluation_timeout(self, window: int) -> None:
        handle = self._eval_timers.pop(window, None)
        if handle is not None:
            handle.cancel()

    async def _record_unrated(self, window: int, ticket_id: str) -> None:
        if ticket_id in self._q.evaluated:
            return
        try:
            await self.evaluate(window, None, "timeout", ticket_id=ticket_id)
        except HallctlError as exc:
            log.info("window %s: unrated record skipped: %s", window, exc.code)

    # ---- devices and sensors -----------------------------------------------------------------

    def device_health(self, device: str, kind: str, state: str, detail: str = "") -> None:
        prev = self.devices.get(device)
        if prev is not None and prev.state == state and prev.detail == detail:
            return
        now = self.clock()
        since = prev.since if prev is not None and prev.state == state else now
        self.devices[device] = ev.DeviceState(
            at=now,
            device=device,
            device_kind=kind,
            state=state,
            detail=detail,
            detail_zh=detail_zh(detail),
            since=since,
        )
        self.bus.publish(self.devices[device])
        if state == "error" or (state == "offline" and prev is not None and prev.state == "ok"):
            self.bus.publish(
                ev.Alert(
                    at=now,
                    alert="device_fault",
                    severity="warning" if state == "offline" else "error",
                    message=device_fault_text(device, kind, state, detail, "zh"),
                    message_en=device_fault_text(device, kind, state, detail, "en"),
                    subject=device,
                    data={"kind": kind, "state": state},
                )
            )

    def device_removed(self, device: str) -> None:
        """A device deleted by a live edit: its health is no longer the hall's (``/devices``, the guide desk)."""
        self.devices.pop(device, None)

    def sensor_reading(self, sensor: str, temperature: float | None, humidity: float | None) -> None:
        """Apply a reading in memory now; live state on change, history per minute (:mod:`.sensors`).

        Deliberately not a coroutine and no store write: hundreds of readings a second must
        cost microseconds each and never wait behind (or in front of) a ticket's commit.
        A partial reading (a zigbee sensor reports temperature alone when only it changed)
        keeps the other value from the last reading: history keeps what was measured, the
        state the sensor's present values.
        """
        self.sensor_readings.reading(sensor, temperature, humidity)

    # ---- supervision and retention ----------------------------------------------------------------

    def overdue(self) -> list[tuple[str, Ticket, int]]:
        """Tickets past their supervision limits now: (``wait_exceeded`` | ``service_overrun``, ticket, minutes)."""
        now = self.clock()
        out: list[tuple[str, Ticket, int]] = []
        for kind, t in engine.overdue(self._q, self.cfg, now):
            if kind == "wait_exceeded":
                elapsed = engine.waiting_time(t, now) or timedelta(0)
            else:
                elapsed = now - (t.serving_at or t.called_at or now)
            out.append((kind, t, int(elapsed.total_seconds() // 60)))
        return out

    def expire_stale_sensors(self) -> None:
        """A sensor without a reading for longer than its ``stale_after_s`` is marked stale (climate ignores it)."""
        self.sensor_readings.expire_stale()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.supervision.check_interval_s)
            self.expire_stale_sensors()
            if engine.business_day(self.clock(), self.cfg) != self._q.day:
                async with self._lock:
                    try:
                        await self._rollover()
                    except HallctlError as exc:
                        log.error("day rollover failed, will retry: %s", exc.code)

    async def purge(self) -> retention.Purged:
        """One retention pass (10 s after the start, then hourly): the same list ``hallctl purge`` applies."""
        done = await retention.purge(self._store, self.cfg, self.clock())
        if any(dataclasses.astuple(done)):
            log.info("retention: %s", "; ".join(done.lines(self.cfg)))
        return done

    async def _retention(self) -> None:
        await asyncio.sleep(RETENTION_START_DELAY_S)
        while True:
            try:
                await self.purge()
            except HallctlError as exc:
                log.error("retention purge failed, will retry: %s", exc.code)
            await asyncio.sleep(3600)

    async def _sensor_flush(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sensors.flush_s)
            await self.sensor_readings.flush()  # a refusal is counted and kept inside

    # ---- live statistics --------------------------------------------------------------------------

    # ---- queries (what the API, pages and devices read; nothing outside reaches the tables) -----

    @property
    def day(self) -> date:
        """The current business day."""
        return self._q.day

    def today_tickets(self) -> list[Ticket]:
        """The current business day's tickets, from memory (no database read)."""
        return [t for t in self._q.tickets.values() if t.day == self._q.day]

    async def tickets(
        self, *, day: date | None = None, state: str | None = None, category: str | None = None, limit: int = 500
    ) -> list[Ticket]:
        """Stored tickets of a day (today by default), optionally of one state or category, in issue order."""
        return await self._store.tickets(day=day or self._q.day, state=state, category=category, limit=limit)

    async def ticket_history(self, ticket_id: str) -> list[LogEntry]:
        """The ticket's event-log rows, oldest first."""
        return await self._store.event_log(ticket_id)

    async def readings(self, since: datetime, sensor: str | None = None) -> list[SensorMinute]:
        """Sensor history per minute from ``since``: stored minutes and the ones still in memory."""
        return await self.sensor_readings.history(since, sensor)

    def store_health(self) -> StoreHealth:
        return self._store.health()

    def window_queue(self, number: int) -> WindowQueue:
        """What a window's terminal shows: who it may call, in queue order, and its tickets of today."""
        wcfg = self.cfg.window_by_number(number)
        if wcfg is None:
            raise NotFound("unknown_window", f"没有{number}号窗口", f"no window {number}")
        waiting = sorted(self._q.waiting(wcfg.categories), key=lambda t: t.order_key())
        mine = [t for t in self._q.tickets.values() if t.window == number and t.day == self._q.day]
        return WindowQueue(
            state=self.window_state(number),
            waiting=waiting,
            served_today=sum(1 for t in mine if t.state == "done"),
            history=sorted(mine, key=lambda t: t.called_at or t.issued_at)[-20:],
            current=self._q.tickets.get(self._q.window(number).current or ""),
        )

    async def day_outcomes(self, day: date) -> list[TicketOutcome]:
        """Every ticket of ``day`` with its evaluation: what the day's report (hallctl.reports) counts."""
        return await self._store.day_outcomes(day)
