"""The simulation side: byte-compatible simulators for every device kind, their control API, the demo.

Nothing in the production path imports this package: the daemon loads it only when
the config has a ``simulate = true`` device, climate unit or zigbee sensor (``hallctl demo`` and the tests).
"""

from hallctl.context import HallContext
from hallctl.simulation.devices import SimulatedDevices
from hallctl.simulation.routes import sim_router


def attach_simulators(ctx: HallContext) -> SimulatedDevices:
    """The simulation component, with its control API (``/api/v1/sim/...``) registered on the context."""
    sims = SimulatedDevices(ctx)
    ctx.add_routes(sim_router(sims))
    return sims
