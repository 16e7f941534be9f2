"""Sensor readings: present value, live state on change, history per minute — nothing lost silently.

Why it is built this way: a hall of 500 zigbee sensors sends hundreds of readings a
second. One fsynced row and one retained QoS 1 MQTT publish per reading took a whole
core and queued thousands of events behind the hall's own. So a reading is applied in
memory only (a plain method, no await): it becomes the sensor's present value, joins
the sensor's aggregate of the current minute (count, min/avg/max/last of each
quantity), and becomes a ``SensorState`` event only when it moved by more than the
deadband or the last one sent is older than ``republish_s`` (so a steady sensor is still
heard, and a screen that missed one change catches up). Staleness is judged by the last
*reading*, never the last publish. A flush task writes the finished minutes in one store
transaction; minutes the store refuses wait for the next flush (bounded: one hour of
every sensor's minutes), and beyond that bound the readings they held are counted as
``not_stored`` and logged (rate-limited) — every reading is either stored or counted.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hallctl import events as ev
from hallctl.bus import Bus
from hallctl.config import Config, SensorConfig
from hallctl.errors import HallctlError
from hallctl.store import SensorMinute, Store

log = logging.getLogger(__name__)

_EPS = 1e-9  # 22.6 → 22.5 is 0.0999999… in binary: a deadband of 0.1 must still count it as 0.1


def minute_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


@dataclasses.dataclass(slots=True)
class _Quantity:
    n: int = 0
    total: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    last: float | None = None

    def add(self, v: float) -> None:
        self.n += 1
        self.total += v
        self.lo = min(self.lo, v)
        self.hi = max(self.hi, v)
        self.last = v

    def fields(self, name: str) -> dict[str, Any]:
        if not self.n:
            return {}
        return {
            f"{name}_count": self.n,
            f"{name}_min": self.lo,
            f"{name}_avg": self.total / self.n,
            f"{name}_max": self.hi,
            f"{name}_last": self.last,
        }


@dataclasses.dataclass(slots=True)
class _Minute:
    sensor: str
    minute: datetime
    count: int = 0
    temperature: _Quantity = dataclasses.field(default_factory=_Quantity)
    humidity: _Quantity = dataclasses.field(default_factory=_Quantity)

    def done(self) -> SensorMinute:
        return SensorMinute(
            sensor=self.sensor,
            minute=self.minute,
            count=self.count,
            **self.temperature.fields("temperature"),
            **self.humidity.fields("humidity"),
        )


def merge(a: SensorMinute, b: SensorMinute) -> SensorMinute:
    """Two parts of the same sensor's minute as one (``b`` is the later part)."""
    out: dict[str, Any] = {"sensor": a.sensor, "minute": a.minute, "count": a.count + b.count}
    for q in ("temperature", "humidity"):
        na, nb = getattr(a, f"{q}_count"), getattr(b, f"{q}_count")
        if not na or not nb:
            src = a if na else b
            out.update((f"{q}_{f}", getattr(src, f"{q}_{f}")) for f in ("count", "min", "avg", "max", "last"))
            continue
        out[f"{q}_count"] = na + nb
        out[f"{q}_min"] = min(getattr(a, f"{q}_min"), getattr(b, f"{q}_min"))
        out[f"{q}_max"] = max(getattr(a, f"{q}_max"), getattr(b, f"{q}_max"))
        out[f"{q}_avg"] = (getattr(a, f"{q}_avg") * na + getattr(b, f"{q}_avg") * nb) / (na + nb)
        out[f"{q}_last"] = getattr(b, f"{q}_last")
    return SensorMinute(**out)


class RateLimitedLog:
    """At most one line per ``every_s`` for a recurring problem, with how many were folded in."""

    def __init__(self, every_s: float = 60.0, logger: logging.Logger | None = None) -> None:
        self.every_s = every_s
        self._logger = logger or log
        self._last = -math.inf
        self._folded = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._folded += 1
            return
        if self._folded:
            msg += f" ({self._folded} similar in the last {self.every_s:.0f} s)"
        self._last, self._folded = now, 0
        self._logger.warning(msg, *args)


class SensorReadings:
    """Every sensor's present value, live state and per-minute history (see the module docstring)."""

    def __init__(self, cfg: Config, store: Store, bus: Bus, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self._store = store
        self.bus = bus
        self.clock = clock
        self._by_id: dict[str, SensorConfig] = {s.id: s for s in cfg.sensor}
        self.present: dict[str, ev.SensorState] = {}  # the latest values (partial readings filled in)
        self.read_at: dict[str, datetime] = {}  # the latest reading's time: what staleness is judged by
        self._published: dict[str, ev.SensorState] = {}
        self._published_at: dict[str, datetime] = {}
        self._current: dict[str, _Minute] = {}  # each sensor's minute in progress
        self._finished: list[SensorMinute] = []  # minutes waiting for the flush (or for a retry)
        self.max_pending = max(600, 60 * len(cfg.sensor))  # an hour of every sensor's minutes
        self.applied = 0
        self.published = 0
        self.within_deadband = 0  # applied and aggregated, but no new live state (the deadband held it)
        self.stored = 0  # readings in minutes the store committed
        self.not_stored = 0  # readings of minutes dropped after the store refused them for too long
        self.flush_failures = 0
        self.last_error: str | None = None
        self._log = RateLimitedLog()

    # ---- readings -------------------------------------------------------------------------

    def reading(self, sensor: str, temperature: float | None, humidity: float | None) -> None:
        """Apply one reading now: present value, the minute's aggregate, live state if it moved."""
        now = self.clock()
        self.applied += 1
        self.read_at[sensor] = now
        m = self._current.get(sensor)
        minute = minute_of(now)
        if m is None or m.minute != minute:
            if m is not None:
                self._finished.append(m.done())
            m = self._current[sensor] = _Minute(sensor, minute)
        m.count += 1
        if temperature is not None:
            m.temperature.add(temperature)
        if humidity is not None:
            m.humidity.add(humidity)
        prev = self.present.get(sensor)
        if prev is not None:
            temperature = temperature if temperature is not None else prev.temperature
            humidity = humidity if humidity is not None else prev.humidity
        state = ev.SensorState(at=now, sensor=sensor, temperature=temperature, humidity=humidity, stale=False)
        self.present[sensor] = state
        if self._should_publish(sensor, state, now):
            self._publish(state, now)
        else:
            self.within_deadband += 1

    def _should_publish(self, sensor: str, state: ev.SensorState, now: datetime) -> bool:
        last = self._published.get(sensor)
        if last is None or last.stale:
            return True
        if (now - self._published_at[sensor]).total_seconds() >= self.cfg.sensors.republish_s:
            return True
        scfg = self._by_id.get(sensor)
        band_t = self.cfg.sensors.deadband_temperature
        band_h = self.cfg.sensors.deadband_humidity
        if scfg is not None:
            band_t = scfg.deadband_temperature if scfg.deadband_temperature is not None else band_t
            band_h = scfg.deadband_humidity if scfg.deadband_humidity is not None else band_h
        return _moved(last.temperature, state.temperature, band_t) or _moved(last.humidity, state.humidity, band_h)

    def _publish(self, state: ev.SensorState, now: datetime) -> None:
        self._published[state.sensor] = state
        self._published_at[state.sensor] = now
        self.published += 1
        self.bus.publish(state)

    def expire_stale(self) -> None:
        """A sensor without a *reading* for longer than its ``stale_after_s`` is published stale."""
        now = self.clock()
        for sensor_id, at in self.read_at.items():
            scfg = self._by_id.get(sensor_id)
            st = self.present.get(sensor_id)
            if scfg and st and not st.stale and (now - at).total_seconds() > scfg.stale_after_s:
                stale = dataclasses.replace(st, at=now, stale=True)
                self.present[sensor_id] = stale
                self._publish(stale, now)

    # ---- history --------------------------------------------------------------------------

    def _take_finished(self, everything: bool) -> list[SensorMinute]:
        """The minutes ready to write: the ended ones, or (at stop) the ones in progress too."""
        this_minute = minute_of(self.clock())
        for sensor, m in list(self._current.items()):
            if everything or m.minute < this_minute:
                self._finished.append(m.done())
                del self._current[sensor]
        batch, self._finished = self._finished, []
        return batch

    async def flush(self, *, everything: bool = False) -> int:
        """Write the finished minutes in one transaction; returns the readings stored."""
        batch = self._take_finished(everything)
        if not batch:
            return 0
        try:
            await self._store.add_sensor_minutes(batch)
        except HallctlError as exc:
            self.flush_failures += 1
            self.last_error = f"{exc.code}: {exc.message}"[:300]
            keep = batch[-self.max_pending :]
            dropped = batch[: len(batch) - len(keep)]
            lost = sum(m.count for m in dropped)
            self.not_stored += lost
            self._finished = keep + self._finished
            self._log.warning(
                "sensors: the store refused %d minutes of history (%s); %d kept for the next flush,"
                " %d readings not stored",
                len(batch),
                exc.code,
                len(keep),
                lost,
            )
            return 0
        n = sum(m.count for m in batch)
        self.stored += n
        self.last_error = None
        return n

    def abandon(self) -> int:
        """At stop, after the last flush: what is still in memory is counted and logged, not dropped silently."""
        lost = sum(m.count for m in self._finished) + sum(m.count for m in self._current.values())
        if lost:
            self.not_stored += lost
            log.error("sensors: %d readings not stored at stop: the store refused the last flush", lost)
        self._finished, self._current = [], {}
        return lost

    def pending(self, since: datetime) -> list[SensorMinute]:
        """Minutes in memory (finished and not yet written, and the ones in progress) from ``since``."""
        cutoff = minute_of(since)
        out = [m for m in self._finished if m.minute >= cutoff]
        out += [m.done() for m in self._current.values() if m.minute >= cutoff]
        return out

    async def history(self, since: datetime, sensor: str | None = None) -> list[SensorMinute]:
        """Stored minutes and the ones still in memory, as one list (same minute merged), oldest first."""
        rows: dict[tuple[str, datetime], SensorMinute] = {}
        for m in await self._store.sensor_minutes(since, sensor):
            rows[(m.sensor, m.minute)] = m
        for m in self.pending(since):
            if sensor is not None and m.sensor != sensor:
                continue
            key = (m.sensor, m.minute)
            rows[key] = merge(rows[key], m) if key in rows else m
        return sorted(rows.values(), key=lambda m: (m.minute, m.sensor))

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.last_error is None,
            "applied": self.applied,
            "published": self.published,
            "within_deadband": self.within_deadband,
            "stored": self.stored,
            "not_stored": self.not_stored,
            "pending_minutes": len(self._finished) + len(self._current),
            "flush_failures": self.flush_failures,
            "last_error": self.last_error,
        }


def _moved(old: float | None, new: float | None, band: float) -> bool:
    if old is None or new is None:
        return old is not new
    delta = abs(new - old)
    return delta >= band - _EPS if band > 0 else delta > 0
