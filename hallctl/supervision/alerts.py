"""The alert service (电子监察): every alert of the hall is stored, deduplicated, escalated and handled.

Anything that notices a problem publishes an :class:`hallctl.events.Alert` *without* an id on
the bus (the service, the engine, the climate zones, the daemon, and this module's own
detectors). That is a request: MQTT and the streams skip it. This component stores it
(one unresolved alert per kind and subject: a second request while one is open changes
nothing), then publishes it again with its id, which is what screens and MQTT see. So there
is one path for every kind, and the record survives a restart.

A named person acknowledges and resolves an alert with a note (``alert.ack``,
``alert.resolve``); an alert left unacknowledged past ``[supervision] escalate_after_s``
goes one level up (:class:`hallctl.events.AlertEscalated`), again after each further
period, up to ``escalate_max_level``.

The detectors read the queue only through the service's queries and change no queue state:
waits and services past their limits, windows paused or unstaffed while their categories
are open, stale sensors. Device faults, climate bands, 差评 and the store's damage are
raised where they are noticed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hallctl import events as ev
from hallctl.bus import Bus, Subscription
from hallctl.config import Config
from hallctl.engine import calendar
from hallctl.errors import Conflict, Forbidden, HallctlError, NotFound
from hallctl.service import HallService
from hallctl.store.supervision import AlertRow, SupervisionTables
from hallctl.supervision.cases import Cases
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

KEEP = 200  # the most recent alerts kept in memory for GET /alerts and the big screen
# After a start, the 差评 whose case a crash lost are looked for this much later: the search reads the
# ratings of the last 60 days without an index on their time (≈0.02 s with a year of history), and a
# restarted hall's first requests come first (issue 12, goal 4).
RECONCILE_DELAY_S = 3.0


def alert_event(a: AlertRow, at: datetime | None = None) -> ev.Alert:
    return ev.Alert(
        at=at or a.opened_at,
        alert=a.kind,
        severity=a.severity,
        message=a.message,
        message_en=a.message_en,
        subject=a.subject,
        data=a.data,
        id=a.id,
        state=a.state,
        level=a.level,
        window=a.window,
    )


def alert_view(a: AlertRow) -> dict[str, Any]:
    """The whole record, for the API (who handled it and their notes included)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(a):
        v = getattr(a, f.name)
        out[f.name] = v.isoformat() if isinstance(v, datetime) else v
    out["alert"] = a.kind
    return out


def _window_of(e: ev.Alert) -> int | None:
    if e.window is not None:
        return e.window
    w = e.data.get("window")
    return w if isinstance(w, int) and not isinstance(w, bool) else None


class Supervision:
    name = "supervision"

    def __init__(
        self,
        cfg: Config,
        service: HallService,
        bus: Bus,
        clock: Callable[[], datetime],
        store: SupervisionTables,
    ) -> None:
        self.cfg = cfg
        self.service = service
        self.bus = bus
        self.clock = clock
        self.store = store
        self.unresolved: dict[tuple[str, str], AlertRow] = {}
        self.latest: collections.deque[AlertRow] = collections.deque(maxlen=KEEP)
        self.cases = Cases(cfg, store, bus, clock)
        self._raised: set[tuple[str, str]] = set()  # detector conditions already raised (this episode)
        self._since: dict[tuple[str, str], datetime] = {}  # window conditions: when first seen
        self._lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._reconcile: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for a in reversed(await self.store.alerts(limit=KEEP)):
            self.latest.append(a)
        for a in await self.store.unresolved_alerts():
            self.unresolved[(a.kind, a.subject)] = a
        self._sub = self.bus.subscribe("supervision", self._on_event, (ev.Alert, ev.EvaluationRecorded))
        self._task = asyncio.create_task(self._watch(), name="hallctl.supervision.watch")
        self._reconcile = asyncio.create_task(self._reconcile_cases(), name="hallctl.supervision.reconcile")

    async def _reconcile_cases(self) -> None:
        await asyncio.sleep(RECONCILE_DELAY_S)
        try:
            await self.cases.start()
        except HallctlError as exc:  # the next start tries again; a rating's own case is opened as it comes
            log.error("supervision: looking for ratings without a case failed: %s", exc.code)

    async def stop(self) -> None:
        reconcile, self._reconcile = self._reconcile, None
        await cancel_and_wait(reconcile)
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self.bus.unsubscribe(sub)

    # ---- reads --------------------------------------------------------------------------------

    def recent(self, n: int) -> list[ev.Alert]:
        """The last ``n`` stored alerts in their present state, oldest first (the big screen, GET /alerts)."""
        return [alert_event(a) for a in list(self.latest)[-n:]]

    async def find(
        self,
        *,
        states: tuple[str, ...] = (),
        kinds: tuple[str, ...] = (),
        windows: tuple[int, ...] | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        return await self.store.alerts(states=states, kinds=kinds, windows=windows, since=since, limit=limit)

    # ---- raising --------------------------------------------------------------------------------

    async def _on_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.Alert) and e.id is None:
            await self.raise_alert(e)
        elif isinstance(e, ev.EvaluationRecorded):
            await self.cases.evaluated(e)

    async def raise_alert(self, e: ev.Alert) -> AlertRow | None:
        """Store a raise request and publish the stored alert; None when (kind, subject) is already unresolved."""
        key = (e.alert, e.subject)
        async with self._lock:
            if key in self.unresolved:
                return None
            row = await self.store.insert_alert(
                e.alert, e.subject, _window_of(e), e.severity, e.message, e.message_en, e.data, e.at
            )
            if row is None:  # stored by someone else meanwhile: take theirs
                for a in await self.store.alerts(states=("open", "acknowledged"), kinds=(e.alert,), limit=1000):
                    if a.subject == e.subject:
                        self.unresolved[key] = a
                return None
            self.unresolved[key] = row
            self.latest.append(row)
        self.bus.publish(alert_event(row))
        return row

    # ---- handling ----------------------------------------------------------------------------------

    async def acknowledge(
        self, alert_id: int, by: str, note: str, token: int | None, windows: tuple[int, ...] | None = None
    ) -> AlertRow:
        return await self._handle(alert_id, "acknowledged", by, note, token, windows)

    async def resolve(
        self, alert_id: int, by: str, note: str, token: int | None, windows: tuple[int, ...] | None = None
    ) -> AlertRow:
        return await self._handle(alert_id, "resolved", by, note, token, windows)

    async def _handle(
        self, alert_id: int, to: str, by: str, note: str, token: int | None, windows: tuple[int, ...] | None
    ) -> AlertRow:
        async with self._lock:
            a = await self.store.alert(alert_id)
            if a is None:
                raise NotFound("unknown_alert", f"没有编号为{alert_id}的告警", f"no alert {alert_id}")
            if windows is not None and a.window not in windows:
                raise Forbidden(
                    "wrong_window", f"告警{alert_id}不属于本窗口", f"alert {alert_id} is not about this token's windows"
                )
            if a.state == "resolved":
                raise Conflict("alert_resolved", f"告警{alert_id}已处理完毕", f"alert {alert_id} is already resolved")
            now = self.clock()
            if to == "acknowledged":
                if a.state != "open":
                    raise Conflict(
                        "alert_acknowledged", f"告警{alert_id}已被确认", f"alert {alert_id} is already acknowledged"
                    )
                b = dataclasses.replace(a, state=to, acked_at=now, acked_by=by, acked_token=token, ack_note=note)
            else:
                b = dataclasses.replace(
                    a, state=to, resolved_at=now, resolved_by=by, resolved_token=token, resolve_note=note
                )
            await self.store.save_alert(b)
            if to == "resolved":
                self.unresolved.pop((b.kind, b.subject), None)
            else:
                self.unresolved[(b.kind, b.subject)] = b
            self._replace_latest(b)
        self.bus.publish(
            ev.AlertChanged(
                at=now,
                id=b.id,
                alert=b.kind,
                subject=b.subject,
                window=b.window,
                severity=b.severity,
                message=b.message,
                message_en=b.message_en,
                state=b.state,
                level=b.level,
                change=to,
            )
        )
        return b

    def _replace_latest(self, b: AlertRow) -> None:
        for i, x in enumerate(self.latest):
            if x.id == b.id:
                self.latest[i] = b
                return

    async def escalate(self) -> list[AlertRow]:
        """Each open (unacknowledged) alert past its period goes one level up; answers those that did."""
        sup = self.cfg.supervision
        period = timedelta(seconds=sup.escalate_after_s)
        now = self.clock()
        done: list[AlertRow] = []
        async with self._lock:
            for a in list(self.unresolved.values()):
                if a.state != "open" or a.level >= sup.escalate_max_level:
                    continue
                if now - (a.escalated_at or a.opened_at) < period:
                    continue
                b = dataclasses.replace(a, level=a.level + 1, escalated_at=now)
                await self.store.save_alert(b)
                self.unresolved[(b.kind, b.subject)] = b
                self._replace_latest(b)
                done.append(b)
        for b in done:
            log.warning("alert %s (%s %s) escalated to level %s", b.id, b.kind, b.subject, b.level)
            self.bus.publish(
                ev.AlertEscalated(
                    at=now,
                    id=b.id,
                    alert=b.kind,
                    subject=b.subject,
                    window=b.window,
                    severity=b.severity,
                    message=b.message,
                    message_en=b.message_en,
                    level=b.level,
                    open_s=(now - b.opened_at).total_seconds(),
                )
            )
        return done

    # ---- detectors ----------------------------------------------------------------------------------

    def _request(
        self, now: datetime, kind: str, severity: str, subject: str, zh: str, en: str, data: dict[str, Any]
    ) -> None:
        window = data.get("window")
        self.bus.publish(
            ev.Alert(
                at=now,
                alert=kind,
                severity=severity,
                message=zh,
                message_en=en,
                subject=subject,
                data=data,
                window=window if isinstance(window, int) else None,
            )
        )

    def check(self) -> None:
        """Raise what is wrong now; each condition once per episode (the alert service deduplicates too)."""
        now = self.clock()
        live: set[tuple[str, str]] = set()
        for kind, t, minutes in self.service.overdue():
            key = (kind, t.id)
            live.add(key)
            if key in self._raised:
                continue
            self._raised.add(key)
            if kind == "wait_exceeded":
                self._request(
                    now,
                    kind,
                    "warning",
                    t.category,
                    f"{t.number}已等候{minutes}分钟",
                    f"{t.number} has waited {minutes} min",
                    {"category": t.category, "number": t.number, "minutes": minutes},
                )
            else:
                self._request(
                    now,
                    kind,
                    "warning",
                    str(t.window),
                    f"{t.window}号窗口 {t.number}办理已超时（{minutes}分钟）",
                    f"Window {t.window}: {t.number} service over time ({minutes} min)",
                    {"category": t.category, "number": t.number, "window": t.window, "minutes": minutes},
                )
        self._check_windows(now, live)
        self._check_sensors(now, live)
        self._raised &= live  # bounded: a condition that ended is forgotten (a new episode raises again)
        self._since = {k: v for k, v in self._since.items() if k in live}

    def _check_windows(self, now: datetime, live: set[tuple[str, str]]) -> None:
        sup = self.cfg.supervision
        for w in self.cfg.window:
            cats = [c for p in w.categories if (c := self.cfg.category_by_prefix(p)) is not None]
            if not any(calendar.is_open(self.cfg, c, now) for c in cats):
                continue
            state = self.service.window_state(w.number)
            name = w.name or f"{w.number}号窗口"
            if state.state == "paused" and sup.window_paused_alert_minutes:
                self._episode(
                    now,
                    live,
                    ("window_paused", str(w.number)),
                    sup.window_paused_alert_minutes,
                    f"{name}暂停服务已超过{sup.window_paused_alert_minutes}分钟",
                    f"Window {w.number} paused for over {sup.window_paused_alert_minutes} min",
                    {"window": w.number},
                )
            if state.staff is None and sup.window_unstaffed_alert_minutes:
                self._episode(
                    now,
                    live,
                    ("window_unstaffed", str(w.number)),
                    sup.window_unstaffed_alert_minutes,
                    f"{name}办公时间内无人签到已超过{sup.window_unstaffed_alert_minutes}分钟",
                    f"Window {w.number} unstaffed in opening hours for {sup.window_unstaffed_alert_minutes}+ min",
                    {"window": w.number},
                )

    def _episode(
        self,
        now: datetime,
        live: set[tuple[str, str]],
        key: tuple[str, str],
        minutes: int,
        zh: str,
        en: str,
        data: dict[str, Any],
    ) -> None:
        live.add(key)
        first = self._since.setdefault(key, now)
        if key in self._raised or now - first < timedelta(minutes=minutes):
            return
        self._raised.add(key)
        self._request(now, key[0], "warning", key[1], zh, en, data)

    def _check_sensors(self, now: datetime, live: set[tuple[str, str]]) -> None:
        for s in list(self.service.sensors.values()):
            if not s.stale:
                continue
            key = ("sensor_stale", s.sensor)
            live.add(key)
            if key in self._raised:
                continue
            self._raised.add(key)
            self._request(
                now,
                "sensor_stale",
                "warning",
                s.sensor,
                f"传感器{s.sensor}长时间无读数",
                f"Sensor {s.sensor} has no recent reading",
                {"sensor": s.sensor},
            )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.supervision.check_interval_s)
            try:
                self.check()
                await self.escalate()
                await self.cases.check_overdue()
            except HallctlError as exc:  # the store refused (full, locked): try again next round
                log.warning("supervision check failed: %s", exc)
