"""The daemon: components started in dependency order, stopped in reverse.

Order: store → service → supervision → [simulators] → [climate unit drivers → climate →
energy, only with ``[[climate_zone]]``] → devices → mqtt → api. The simulators come before the climate component because
a simulated air conditioner must be listening before the climate component creates its
driver; the climate component before MQTT, whose session subscribes the MQTT units' topics.
HTTP comes up last so no request arrives before the queue is loaded; the
store closes last so nothing writes into a closed database. A core component that
fails to start stops the daemon with its reason; a device that fails only marks
itself offline.

Components get a :class:`hallctl.context.HallContext`, never this class, so no
component imports the daemon. The simulators are loaded only when the config has
a ``simulate = true`` device: a production hall runs without simulator code.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hallctl import events as ev
from hallctl import systemd
from hallctl.admin import AdminConsole
from hallctl.admin.photos import StaffPhotos
from hallctl.auth import Authenticator
from hallctl.bus import Bus
from hallctl.climate_view import ClimateView, EnergyView, NoClimate, NoEnergy
from hallctl.config import Config
from hallctl.context import Component, HallContext
from hallctl.http.server import ApiServer
from hallctl.service import Clock, HallService, utcnow
from hallctl.store import DaemonLock, Store
from hallctl.supervision import Supervision
from hallctl.tasks import cancel_and_wait

if TYPE_CHECKING:
    from fastapi import APIRouter

    from hallctl.climate import ClimateZones
    from hallctl.climate.meter import EnergyMeter

log = logging.getLogger(__name__)

ComponentFactory = Callable[[HallContext], Component | None]
FULL_CHECK_DELAY_S = 5.0  # after serving, before the whole database file is checked
TRIM_DELAY_S = 1.0  # after serving, before the start-up heap is collected and its freed memory handed back


class Hall:
    """One hall's daemon: every component and the state directory they share."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock = utcnow,
        demo: bool = False,
        state_dir: Path | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.demo = demo
        self.state_dir = state_dir or Path(cfg.store.path).resolve().parent
        self.store = Store(
            cfg.store.path,
            busy_timeout_ms=cfg.store.busy_timeout_ms,
            max_size_mb=cfg.store.max_size_mb,
            store_photo=cfg.privacy.store_photo,
        )
        self.bus = Bus()
        self.auth = Authenticator(self.store)
        self.service = HallService(cfg, self.store, self.bus, clock)
        self.supervision = Supervision(cfg, self.service, self.bus, clock, self.store)
        # The climate package (controller, meter, unit drivers) only for a hall with zones.
        climate: ClimateView = NoClimate()
        energy: EnergyView = NoEnergy(cfg, clock)
        self._climate: tuple[ClimateZones, EnergyMeter] | None = None
        if cfg.climate_zone:
            from hallctl.climate import ClimateZones
            from hallctl.climate.meter import EnergyMeter

            zones = ClimateZones(cfg, self.bus, clock, setpoints=self.store, seed=self.service.snapshot)
            meter = EnergyMeter(cfg, self.bus, clock, self.store, states=zones.snapshot, readbacks=zones.unit_states)
            climate, energy, self._climate = zones, meter, (zones, meter)
        self.ctx = HallContext(
            cfg=cfg,
            service=self.service,
            climate=climate,
            energy=energy,
            supervision=self.supervision,
            bus=self.bus,
            auth=self.auth,
            store=self.store,
            state_dir=self.state_dir,
            demo=demo,
        )
        self.climate_parts: list[Component] = []
        if self._climate is not None:
            from hallctl.climate.drivers import ClimateDrivers

            # The unit kinds (modbus, bacnet, mqtt) and the links their units share.
            unit_drivers = ClimateDrivers(self.ctx)
            self._climate[0].unit_factory = unit_drivers.make_unit
            self.climate_parts = [unit_drivers, *self._climate]
        self.components: list[Component] = []
        # The admin console: accounts, audit, live edits written back to ``config_path``.
        self.admin = AdminConsole(cfg, self.store, clock, config_path)
        photos = StaffPhotos(self.state_dir)
        # Made (and their modules imported) at their first request: few ask, every start paid (issue 12).
        self.ctx.add_lazy_routes("/api/v1/admin", lambda: _admin_router(self.ctx, self.admin, photos))
        self.ctx.add_lazy_routes("/api/v1/staff", lambda: _staff_photo_router(self.ctx, photos))
        self.ctx.add_lazy_routes("/api/v1/admin", lambda: _backoffice_router(self.ctx, self.admin))
        self.service.config_listeners.append(self._take_config)
        self.api = ApiServer(self.ctx)
        self._stack: contextlib.AsyncExitStack | None = None
        # One daemon per database: taken before the store opens and before MQTT connects.
        self.lock = None if cfg.store.path == ":memory:" else DaemonLock(cfg.store.path)
        self.watchdog: systemd.Watchdog | None = None

    def _take_config(self, cfg: Config) -> None:
        """A live edit: everyone who holds the config gets the new one (under the service's lock)."""
        self.cfg = cfg
        self.ctx.cfg = cfg
        self.supervision.cfg = cfg
        if self._climate is not None:
            self._climate[0].cfg = cfg  # a zone's opening follows its categories' hours
        self.admin.cfg = cfg

    def part(self, name: str) -> Component | None:
        """A started component by name (``devices``, ``mqtt``, ``simulation``...), for tools and tests."""
        return next((p for p in self.components if p.name == name), None)

    @property
    def climate(self) -> ClimateZones:
        """The climate component of a hall with ``[[climate_zone]]`` (for tools and tests)."""
        if self._climate is None:
            raise LookupError("this hall has no [[climate_zone]]")
        return self._climate[0]

    @property
    def energy(self) -> EnergyMeter:
        """The energy meter of a hall with ``[[climate_zone]]`` (for tools and tests)."""
        if self._climate is None:
            raise LookupError("this hall has no [[climate_zone]]")
        return self._climate[1]

    @property
    def sims(self) -> dict[str, Any]:
        """The simulators by device id (empty when no device is simulated): for the demo's tools and tests."""
        part = self.part("simulation")
        sims: dict[str, Any] = getattr(part, "sims", {})
        return sims

    def health_extra(self) -> dict[str, Any]:
        return self.ctx.health()

    def _build(self) -> list[Component]:
        parts: list[Component] = [self.supervision]
        for factory in component_factories():
            part = factory(self.ctx)
            if part is not None:
                parts.append(part)
        # After the simulators (a simulated unit listens before its driver is made), before the
        # devices (whose first readings the climate component decides on) and MQTT (see above).
        at = next((i for i, p in enumerate(parts) if p.name == "simulation"), 0) + 1
        parts[at:at] = self.climate_parts
        parts.append(self.api)
        return parts

    async def start(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        try:
            if self.lock is not None:
                self.lock.acquire()
                self._stack.callback(self.lock.release)
            await self.store.open()
            self._stack.push_async_callback(self.store.close)
            damage = await self.store.verify(self.cfg.store.on_damage)
            self._stack.push_async_callback(self.bus.close)
            await self.service.start()
            self._stack.push_async_callback(self.service.stop)
            if self.cfg.sensor:
                self.ctx.report_health("sensors", self.service.sensor_readings.health)
            self.components = self._build()
            for part in self.components:
                log.debug("starting %s", part.name)
                await part.start()
                self._stack.push_async_callback(self._stop_part, part)
            if damage:  # after supervision subscribed: GET /alerts keeps it; health keeps store.damaged
                self._alert_damage(damage)
            # The start-up check was bounded (hallctl.store.integrity.check); the rest of the file is
            # checked now, while serving, on its own connection: a finding is an alert and health damage.
            full = asyncio.create_task(self._check_whole_store(), name="hallctl.store.full_check")
            self._stack.push_async_callback(cancel_and_wait, full)
            self._start_watchdog()
        except BaseException:
            await self.stop()
            raise
        finally:
            # `hallctl run` paused the cyclic collector for the start-up (hallctl.cli.cmd_run). Turned
            # back on as it was, the first allocation would start a collection that walks every object
            # the start-up made (≈260,000 with 30,000 waiting: ≈0.1 s, in front of the first answers);
            # frozen, the collector skips them until settle_start_up_heap, after serving.
            paused = not gc.isenabled()
            if paused:
                gc.freeze()
            gc.enable()
        # Not on the way to the first answer: the collection and the trim each walk the whole heap
        # (≈0.1 s with 30,000 waiting), and the kiosks' first requests after a restart come first
        # (issue 12, goal 4).
        asyncio.get_running_loop().call_later(TRIM_DELAY_S, settle_start_up_heap, paused)

    def _alert_damage(self, damage: list[str]) -> None:
        self.bus.publish(
            ev.Alert(
                at=self.service.clock(),
                alert="store_damaged",
                severity="critical",
                message="数据库损坏：已在最高票号之后继续取号，请尽快从备份恢复",
                message_en="Database damaged: numbering goes on after the highest number; restore from a backup soon",
                subject=self.cfg.store.path,
                data={"damage": damage},
            )
        )

    async def _check_whole_store(self) -> None:
        # Not in the first seconds: after a restart the kiosks' retries and the screens'
        # reconnects come first; the check (about a second of CPU per year of history) waits.
        await asyncio.sleep(FULL_CHECK_DELAY_S)
        found = await self.store.verify_full()
        release_freed_memory()  # the check's page cache, freed in its thread's malloc arena
        if found:
            self._alert_damage(found)

    def _start_watchdog(self) -> None:
        """Tell systemd we serve (Type=notify), then ping while the loop and the writer are healthy."""
        assert self._stack is not None
        interval = systemd.watchdog_interval()
        if interval is not None:
            self.watchdog = systemd.Watchdog(self.store.ping, interval)
            self.watchdog.start()
            self._stack.push_async_callback(self.watchdog.stop)
        systemd.notify("READY=1")
        self._stack.callback(systemd.notify, "STOPPING=1")

    @staticmethod
    async def _stop_part(part: Component) -> None:
        try:
            await part.stop()
        except Exception:
            log.exception("stopping %s failed", part.name)

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()


T = TypeVar("T")


def _admin_router(ctx: HallContext, admin: AdminConsole, photos: StaffPhotos) -> APIRouter:
    from hallctl.http.admin import admin_router

    return admin_router(ctx, admin, photos)


def _staff_photo_router(ctx: HallContext, photos: StaffPhotos) -> APIRouter:
    from hallctl.http.admin import staff_photo_router

    return staff_photo_router(ctx, photos)


def _backoffice_router(ctx: HallContext, admin: AdminConsole) -> APIRouter:
    from hallctl.http.backoffice import backoffice_router

    return backoffice_router(ctx, admin)


def settle_start_up_heap(frozen: bool) -> None:
    """Once serving: the start-up's objects back under the cyclic collector, its garbage freed, memory trimmed.

    One full collection here (the start-up leaves a few hundred unreachable objects) puts the
    collector in the state it reaches in a long run: every live start-up object in the oldest
    generation, counted, so later full collections come as rarely as they always did. The
    freeze is never kept: a frozen object that later joins a garbage cycle would never be freed.
    """
    if frozen:
        gc.unfreeze()
        gc.collect()
    release_freed_memory()


def release_freed_memory() -> None:
    """Hand memory freed after start-up back to the kernel (glibc's ``malloc_trim``).

    Start-up frees a lot (route building, the queue load, the database checks in their
    threads) and glibc keeps freed heap pages mapped: trimming once after start and once
    after the whole-file check takes idle RSS down by about 0.6 MiB (issue 12, goal 4,
    measured with bench/footprint.py's plain hall). Other C libraries have no
    ``malloc_trim``: nothing to do there.
    """
    import ctypes  # already imported by the voice renderer's module: no extra memory

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)


# The interpreter's settings for a daemon process (issue 12, goal 1; measured with
# bench/issue_call.py, 64 kiosk clients, alternated runs; see run_loop).
GC_YOUNG_THRESHOLD = 5_000  # net allocations between young collections (CPython's default: 700)
SWITCH_INTERVAL_S = 0.001  # how long a thread waits for the GIL before asking for it (default: 5 ms)
MALLOC_ARENAS = 1  # glibc malloc arenas for all the daemon's threads (glibc's default: up to 8 per core)
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas() -> None:
    """One glibc malloc arena for the whole process, set before the daemon starts any thread.

    Each thread that calls ``malloc`` while another holds the main arena's lock gets an arena
    of its own, and memory freed in one arena is not reused by another: the store's writer
    and reader, the thread pool and libuv's threads each kept their own pages. Those threads
    allocate little, and mostly under the GIL, so sharing one arena cost nothing measurable
    (64 kiosk clients: 5,797 against 5,763 tickets/s, CPU per ticket 0.183 against 0.181 ms,
    alternated runs) and saves 0.35-0.4 MiB of idle RSS, a plain hall's 57.4 → 57.0 MiB, so
    goal 4's 60 holds in MB (10^6 bytes) as well as in MiB (issue 12). Other C libraries have
    no ``mallopt`` arenas: nothing to do there.
    """
    import ctypes  # the voice renderer's module imports it anyway: no extra memory

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the daemon's one event loop: uvloop's (libuv) instead of asyncio's pure-Python selector loop.

    The daemon's loop spends most of its time in transport and callback plumbing (one
    HTTP request, one writer answer, one MQTT publish after another); uvloop does that
    part in C for about half the CPU. It is still one asyncio loop with the same API, so
    nothing else changes. Only the daemon processes (``run``, ``demo``) use it; the CLI's
    short commands and the tests keep asyncio's default loop.

    Three process settings go with it, for the same processes only: one malloc arena
    (:func:`limit_malloc_arenas`), and these two of the interpreter's:

    * The cyclic collector's young threshold (:data:`GC_YOUNG_THRESHOLD`). Every kiosk ticket
      stays in memory for the day with its queue-index entries, about nine objects, so under a
      busy hall's load the heap grows steadily, and CPython's default (700) ran a collection of
      the whole heap every ~8,000 tickets: in a 12 s run 21 full collections of ~58 ms each,
      40 µs of the loop's ~200 µs per ticket. At 5,000 the whole-heap collections come seven
      times more rarely and the collector's share is a few µs per ticket. Garbage without
      cycles is freed by reference counting as always; only cyclic garbage waits a little longer.
    * The GIL switch interval (:data:`SWITCH_INTERVAL_S`). The store's writer thread needs
      the GIL only for moments, but after every SQLite call (each releases it) it waits for the
      busy loop to hand it back, up to the whole interval: with CPython's 5 ms, a batch's four
      statements took 4-5 ms of wall time for well under 1 ms of work, and the loop then sat
      idle waiting for that batch's answers. At 1 ms the batches are durable sooner and the
      loop stays busy: +7 % tickets/s at the same CPU per ticket.
    """
    import uvloop

    refuse_pydantic_v1()
    limit_malloc_arenas()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def refuse_pydantic_v1() -> None:
    """Keep ``pydantic.v1`` out of the daemon: FastAPI imports it only to refuse v1 models.

    For every parameter of every route FastAPI asks whether its type is a pydantic v1 model,
    and to ask it imports ``pydantic.v1`` (the whole pydantic 1 API: ≈1 MiB of idle RSS and
    ≈0.07 s of the cold start, issue 12 goal 4). hallctl has no v1 models (CI: the footprint
    imports test), and FastAPI treats a ``pydantic.v1`` it cannot import as "no v1 models",
    so the daemon processes mark it as not importable (``None`` in ``sys.modules``, Python's
    way to block one import). Only ``run`` and ``demo`` do this; tests and tools are untouched.
    """
    if "pydantic.v1" not in sys.modules:
        sys.modules["pydantic.v1"] = None  # type: ignore[assignment]


def _simulation(ctx: HallContext) -> Component | None:
    cfg = ctx.cfg
    if not any(x.simulate for x in (*cfg.device, *cfg.climate_unit, *cfg.sensor)):
        return None
    from hallctl.simulation import attach_simulators

    return attach_simulators(ctx)


def _devices(ctx: HallContext) -> Component | None:
    if not ctx.cfg.device:
        return None
    from hallctl.devices import DeviceManager

    return DeviceManager(ctx)


def _zigbee(ctx: HallContext) -> Component | None:
    if not any(s.source == "zigbee" for s in ctx.cfg.sensor):
        return None
    from hallctl.devices.zigbee import ZigbeeSensors

    return ZigbeeSensors(ctx)


def _mqtt(ctx: HallContext) -> Component | None:
    from hallctl.mqtt import MqttBridge
    from hallctl.mqtt.asyncapi_route import router as asyncapi_router

    # The AsyncAPI document beside the OpenAPI one (hallctl.http may not import hallctl.mqtt).
    ctx.add_routes(asyncapi_router(ctx.cfg))
    return MqttBridge(ctx)


def _city_feed(ctx: HallContext) -> Component | None:
    if not ctx.cfg.city.feed:
        return None
    from hallctl.mqtt.citylog import CityFeed

    return CityFeed(ctx)


def component_factories() -> list[ComponentFactory]:
    """Explicit registry, in start order; each factory returns None when its part is not configured."""
    return [_simulation, _devices, _zigbee, _mqtt, _city_feed]
