"""The simulation component: start a simulator for each ``simulate = true`` device.

Serial devices get their simulator behind a pseudo-terminal under
``<state_dir>/dev/<id>``; badge readers get vpcd's virtual readers under a private
pcscd (or the system's, when one runs). Each simulator's address goes into
``ctx.device_ports``, where the device manager finds it, so the real driver code
runs against it exactly as against hardware. Started before the devices component,
stopped after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from drivers.sim.badge import VirtualBadge
from drivers.sim.escpos import EscPosSim
from drivers.sim.evalpad import EvalPadSim
from drivers.sim.idcard import IdCardSim
from drivers.sim.led import LedBusSim
from drivers.sim.modbus_sensor import ModbusSensorSim
from hallctl.config import DeviceConfig
from hallctl.context import HallContext
from hallctl.errors import NotFound
from hallctl.simulation.aircon import SimulatedAirCon
from hallctl.simulation.climate import SimulatedClimate
from hallctl.simulation.readers import ReaderSlot, SharedPcscd, claim_reader

log = logging.getLogger(__name__)


class BadgeSlot:
    """One of vpcd's virtual readers, claimed for this demo, and the badge lying on it (if any)."""

    def __init__(self, slot: ReaderSlot) -> None:
        self.slot = slot
        self.reader = slot.reader
        self.port = slot.port
        self.badge: VirtualBadge | None = None

    async def show(self, uid: bytes | None) -> None:
        if self.badge is not None:
            await self.badge.remove()
            self.badge = None
        if uid:
            badge = VirtualBadge(uid, port=self.port)
            await badge.insert()
            self.badge = badge


class SimulatedDevices:
    name = "simulation"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.dev_dir = ctx.state_dir / "dev"
        self.ticket_dir = ctx.state_dir / "tickets"
        self.sims: dict[str, Any] = {}
        self._pcscd: SharedPcscd | None = None
        self.aircon = SimulatedAirCon(ctx)
        self.climate = SimulatedClimate(ctx, self.sims, self.aircon)

    async def start(self) -> None:
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        for dev in self.cfg.device:
            if not dev.simulate:
                continue
            try:
                await self._start(dev)
            except (OSError, RuntimeError, ValueError) as exc:
                log.error("simulator for %s (%s) could not start: %s", dev.id, dev.kind, exc)
        await self.aircon.start()  # the air conditioners, before the climate drivers look for them
        self.climate.start()  # the rooms behind the zones' simulated sensors

    async def _start(self, dev: DeviceConfig) -> None:
        path = str(self.dev_dir / dev.id)
        if dev.kind == "idcard":
            sim: Any = IdCardSim(path)
            await sim.start()
        elif dev.kind == "printer":
            sim = EscPosSim(path, self.ticket_dir / dev.id, answers_status=dev.printer_status == "query")
            await sim.start()
        elif dev.kind == "led_bus":
            addresses = [w.led_address for w in self.cfg.window if w.led == dev.id and w.led_address]
            sim = LedBusSim(path, addresses=addresses)
            sim.plug()
        elif dev.kind == "evalpad":
            sim = EvalPadSim(path, address=dev.address or 1)
            sim.plug()
        elif dev.kind == "modbus_sensor":
            sim = ModbusSensorSim(path, device_id=dev.address or 1)
            await sim.start()
            sim.set(24.5 + 0.5 * len(self.sims) % 3, 48.0)
        elif dev.kind == "badge":
            # A reader no other demo holds (vpcd has two per machine), then the machine's pcscd,
            # started if none runs and stopped only when no other demo uses it (readers.py).
            slot = claim_reader()
            try:
                if self._pcscd is None:
                    pcscd = SharedPcscd()
                    await asyncio.to_thread(pcscd.start)
                    self._pcscd = pcscd
            except BaseException:
                slot.release()
                raise
            sim = BadgeSlot(slot)
            path = sim.reader
        else:
            raise RuntimeError(f"no simulator for device kind {dev.kind}")
        self.sims[dev.id] = sim
        self.ctx.device_ports[dev.id] = path

    async def stop(self) -> None:
        await self.climate.stop()
        await self.aircon.stop()
        for sim in self.sims.values():
            with contextlib.suppress(Exception):
                if isinstance(sim, BadgeSlot):
                    await sim.show(None)  # a virtual badge left on a reader
                    sim.slot.release()
                    continue
                closer = getattr(sim, "close", None) or getattr(sim, "stop", None)
                if closer is not None:
                    result = closer()
                    if asyncio.iscoroutine(result):
                        await result
        self.sims.clear()
        if self._pcscd is not None:
            await asyncio.to_thread(self._pcscd.stop)
            self._pcscd = None

    def sim(self, device_id: str) -> Any:
        sim = self.sims.get(device_id)
        if sim is None:
            raise NotFound("unknown_simulator", f"no simulated device {device_id}")
        return sim

    def printed(self, device_id: str) -> list[Path]:
        sim = self.sim(device_id)
        return [Path(t.png_path) for t in getattr(sim, "tickets", [])]
