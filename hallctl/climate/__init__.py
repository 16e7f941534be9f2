"""Climate control (低碳管理): the hall's sensors, opening hours and queue drive its air conditioning.

``controller`` decides (pure), ``schedule`` says when a zone is open (pure), ``zones``
is the component that gathers inputs and drives the units (``drivers.aircon.AcUnit``),
``units`` maps a ``[[climate_unit]]`` kind to its driver. docs/climate.md has the rules.
"""

from hallctl.climate.zones import ClimateZones
from hallctl.config import CLIMATE_MODES

__all__ = ["CLIMATE_MODES", "ClimateZones"]
