"""What the rest of the daemon sees of the climate, and a hall without ``[[climate_zone]]``.

The API (``GET /climate``, ``/climate/energy``), ``climate.set`` and the snapshot reach the
climate through :class:`ClimateView` and :class:`EnergyView`. A hall with zones has the
real components (:class:`hallctl.climate.ClimateZones`, :class:`hallctl.climate.meter.EnergyMeter`);
a hall without any gets :class:`NoClimate` and :class:`NoEnergy`, which answer as the real
ones do with no zones (no states, no energy rows, ``unknown_zone``), so such a hall does not
import the climate package, its controller or ``drivers.aircon`` at all, nor start their
tasks (issue 12, goal 4: import what a config uses; ≈0.7 MiB of idle RSS).

This module sits outside ``hallctl/climate/`` so that importing it does not run that
package's ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from hallctl import engine
from hallctl import events as ev
from hallctl.config import Config
from hallctl.errors import NotFound


def unknown_zone(zone_id: str) -> NotFound:
    """``climate.set`` for a zone the hall does not have (with zones or without)."""
    return NotFound("unknown_zone", f"没有空调区域{zone_id}", f"no climate zone {zone_id}")


class ClimateView(Protocol):
    """The climate as the API, the commands and the snapshot use it."""

    def snapshot(self) -> list[ev.ClimateState]: ...

    async def set(
        self,
        zone_id: str,
        mode: str | None,
        target: float | None,
        *,
        until: datetime | None = None,
        minutes: float | None = None,
    ) -> ev.ClimateState: ...


class EnergyDay(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class EnergyView(Protocol):
    """Per-zone energy and comfort per day, as the API reads it."""

    def today(self) -> date: ...

    async def totals(self, day: date) -> Sequence[EnergyDay]: ...


class NoClimate:
    """The climate of a hall without zones: nothing to show, every zone unknown (as ClimateZones answers)."""

    def snapshot(self) -> list[ev.ClimateState]:
        return []

    async def set(
        self,
        zone_id: str,
        mode: str | None,
        target: float | None,
        *,
        until: datetime | None = None,
        minutes: float | None = None,
    ) -> ev.ClimateState:
        raise unknown_zone(zone_id)


class NoEnergy:
    """The energy figures of a hall without zones: none, on any day."""

    def __init__(self, cfg: Config, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.clock = clock

    def today(self) -> date:
        return engine.business_day(self.clock(), self.cfg)

    async def totals(self, day: date) -> Sequence[EnergyDay]:
        return []
