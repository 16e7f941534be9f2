"""From a ``[[climate_unit]]`` to a driver: the registry of air-conditioning unit kinds.

The controller speaks only :class:`drivers.aircon.AcUnit`; which driver carries a
unit's commands is decided by ``kind``. The built-in kinds (``modbus``, ``bacnet``,
``mqtt``) are the daemon's :class:`hallctl.climate.drivers.ClimateDrivers`, which need
the daemon's links (gateways, the MQTT component); :func:`register_unit_kind` adds a kind
process-wide, or replaces a built-in one (an out-of-tree driver, a test's fake), and is
consulted first. A kind with no driver is refused with :class:`AcUnsupported` when the
climate component starts, which marks the unit unavailable and raises an alert instead
of stopping the hall.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.aircon import AcUnit, AcUnsupported
from hallctl.config import ClimateUnitConfig

UnitFactory = Callable[[ClimateUnitConfig], AcUnit]

_FACTORIES: dict[str, UnitFactory] = {}


def register_unit_kind(kind: str, factory: UnitFactory) -> None:
    """Make ``kind`` constructible (the driver's module calls this; tests register fakes)."""
    _FACTORIES[kind] = factory


def registered_kind(kind: str) -> UnitFactory | None:
    """The factory :func:`register_unit_kind` gave ``kind``, if any."""
    return _FACTORIES.get(kind)


def make_unit(cfg: ClimateUnitConfig) -> AcUnit:
    """The driver for one configured unit; :class:`AcUnsupported` when its kind has none in this build."""
    factory = _FACTORIES.get(cfg.kind)
    if factory is None:
        raise AcUnsupported(cfg.id, f"no driver for climate_unit kind {cfg.kind!r} in this build")
    return factory(cfg)
