"""Climate control (低碳管理): zones fed by the hall's sensors, their mode, target and action.

Today a zone computes what its air conditioning should do and publishes it (an HA
climate entity); no actuator is driven yet (see docs/architecture.md).
"""

from hallctl.climate.zones import CLIMATE_MODES, ClimateZones, climate_action

__all__ = ["CLIMATE_MODES", "ClimateZones", "climate_action"]
