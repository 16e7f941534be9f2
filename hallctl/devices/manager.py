"""The devices component: hardware (or its simulator) on one side, the service on the other.

Drivers report to the service (a card was read, a key pressed, a badge shown,
a device changed health); bus events drive the drivers (a call goes to the LED
display, an issue decision's print job to the kiosk's printer, a finished ticket to the
window's pad). Devices never call each other. Each driver runs in its own named
task, and a device that fails only marks itself offline: the queue keeps going.

A device is reached at its configured ``port`` unless the context names another
(``ctx.device_ports``): the simulation side (``hallctl.simulation``) puts its
byte-compatible simulators behind pseudo-terminals and registers their paths there,
so the demo exercises the same driver code as a real hall while this module never
loads simulator code.

A live edit of ``[[device]]`` (admin console) is taken by :meth:`DeviceManager.apply_config`:
each device whose entry changed or went away has its driver task cancelled and its bus
subscriptions dropped, then the new entry's driver starts, without touching the others.
Which kiosk a reader or printer serves, and which sensor a Modbus device feeds, are looked
up at each use, so a ``[[kiosk]]`` edit needs no restart of any driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from drivers.base import DeviceDriver, Health
from drivers.errors import DeviceError
from drivers.escpos import EscPosPrinter, PrinterNotReady, PrintIncomplete, TicketPrint
from drivers.evalpad import EvalPad
from drivers.idcard import IdCard, IdCardReader, clean_text
from drivers.led import DisplayRejected, LedBus
from hallctl import events as ev
from hallctl.config import Config, DeviceConfig
from hallctl.context import HallContext
from hallctl.engine import Holder
from hallctl.errors import HallctlError

log = logging.getLogger(__name__)

PRINTER_NOTICES = {
    "paper_out": (
        "打印机缺纸，号票已登记，请到导办台补打",
        "printer out of paper; your number is registered, please see the guide desk",
    ),
    "cover_open": ("打印机盖未关，号票已登记，请到导办台补打", "printer cover open; please see the guide desk"),
}
DEFAULT_NOTICE = (
    "号票打印失败，号码已登记，请到导办台补打",
    "the ticket could not be printed; your number is registered, please see the guide desk",
)


class DeviceManager:
    name = "devices"

    def __init__(self, ctx: HallContext) -> None:
        self.ctx = ctx
        self.svc = ctx.service
        self.drivers: dict[str, DeviceDriver] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subs: list[Any] = []
        # Per device: the entry its driver was built from, its run task and its bus subscriptions.
        self._running: dict[str, DeviceConfig] = {}
        self._run_tasks: dict[str, asyncio.Task[Any]] = {}
        self._dev_subs: dict[str, list[Any]] = {}
        self._swap_lock = asyncio.Lock()

    @property
    def cfg(self) -> Config:
        """The hall's config now: a live edit (admin console) replaces ``ctx.cfg``, so never keep a copy."""
        return self.ctx.cfg

    def _window_of(self, attr: str, dev_id: str) -> int | None:
        """The window whose ``pad`` / ``badge_reader`` is this device, looked up at each use (live edits)."""
        return next((w.number for w in self.cfg.window if getattr(w, attr) == dev_id), None)

    def _led_windows(self, dev_id: str) -> dict[int, int]:
        return {w.number: w.led_address for w in self.cfg.window if w.led == dev_id and w.led_address}

    # ---- helpers -----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"hallctl.devices.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _subscribe(self, name: str, dev: DeviceConfig, handler: Any, types: tuple[type[ev.Event], ...]) -> None:
        sub = self.svc.bus.subscribe(f"{name}.{dev.id}", handler, types)
        self._subs.append(sub)
        self._dev_subs.setdefault(dev.id, []).append(sub)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, HallctlError):
            log.info("%s: %s", task.get_name(), exc.code)
        elif exc is not None:
            log.error("%s failed", task.get_name(), exc_info=exc)

    def _health(self, dev: DeviceConfig, kind: str | None = None) -> Callable[[Health], None]:
        def report(h: Health) -> None:
            if self._running.get(dev.id) is not dev:
                return  # a driver stopped by a live edit: its last words are not the device's state
            self.svc.device_health(dev.id, kind or dev.kind, h.state, h.detail)

        return report

    def _port(self, dev: DeviceConfig) -> str:
        port = self.ctx.device_ports.get(dev.id) or dev.port
        if port is None:
            raise RuntimeError("simulated device, but no simulator was started for it")
        return port

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        for dev in self.cfg.device:
            self.svc.device_health(dev.id, dev.kind, "offline", "starting")
            await self._start_device(dev)
        self.ctx.config_appliers.append(self.apply_config)

    async def _start_device(self, dev: DeviceConfig) -> None:
        builders: dict[str, Callable[[DeviceConfig], Awaitable[None]]] = {
            "idcard": self._idcard,
            "printer": self._printer,
            "led_bus": self._led_bus,
            "evalpad": self._evalpad,
            "badge": self._badge,
            "modbus_sensor": self._modbus,
        }
        self._running[dev.id] = dev
        try:
            await builders[dev.kind](dev)
        except (DeviceError, OSError, RuntimeError, ValueError, ImportError) as exc:
            log.error("device %s (%s) could not start: %s", dev.id, dev.kind, exc)
            self.svc.device_health(dev.id, dev.kind, "error", f"could not start: {exc}")

    async def _stop_device(self, dev_id: str) -> None:
        self._running.pop(dev_id, None)
        self.drivers.pop(dev_id, None)
        for sub in self._dev_subs.pop(dev_id, []):
            if sub in self._subs:
                self._subs.remove(sub)
            await self.svc.bus.unsubscribe(sub)
        task = self._run_tasks.pop(dev_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def apply_config(self, cfg: Config) -> None:
        """Swap the drivers of the devices whose ``[[device]]`` entry changed; drop the deleted ones.

        Called after a live edit was taken (``ctx.config_appliers``). A changed device shows
        ``unknown`` / ``restarting`` until its new driver reports (no fault alert for a planned
        swap); a deleted one leaves ``/devices``, with its LED addresses.
        """
        async with self._swap_lock:
            wanted = {d.id: d for d in cfg.device}
            for dev_id, running in list(self._running.items()):
                if wanted.get(dev_id) == running:
                    continue
                log.info("device %s: entry changed by a live edit, restarting its driver", dev_id)
                await self._stop_device(dev_id)
                if dev_id not in wanted:
                    for name, state in list(self.svc.devices.items()):
                        if name == dev_id or (state.device_kind == "led" and name.startswith(f"{dev_id}-")):
                            self.svc.device_removed(name)
            for dev in cfg.device:
                if dev.id not in self._running:
                    self.svc.device_health(dev.id, dev.kind, "unknown", "restarting")
                    await self._start_device(dev)

    async def stop(self) -> None:
        for sub in self._subs:
            await self.svc.bus.unsubscribe(sub)
        self._subs.clear()
        self._dev_subs.clear()
        self._running.clear()
        if self.apply_config in self.ctx.config_appliers:
            self.ctx.config_appliers.remove(self.apply_config)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _run(self, dev: DeviceConfig, driver: DeviceDriver) -> None:
        self.drivers[dev.id] = driver
        self._run_tasks[dev.id] = self._spawn(driver.run(), f"{dev.id}.run")

    # ---- ID card readers at kiosks ------------------------------------------------------

    async def _idcard(self, dev: DeviceConfig) -> None:
        def on_card(card: IdCard) -> None:
            kiosk = next((k for k in self.cfg.kiosk if k.reader == dev.id), None)  # at each card: live edits
            if kiosk is None:
                log.warning("%s: card read, but no kiosk uses this reader", dev.id)
                return
            self._spawn(self._card_read(kiosk.id, card), f"{dev.id}.card")

        reader = IdCardReader(
            dev.id,
            self._port(dev),
            on_card=on_card,
            on_health=self._health(dev),
            baudrate=dev.baudrate or 115200,
            dedupe_seconds=self.cfg.queue.card_dedupe_seconds,
        )
        self._run(dev, reader)

    async def _card_read(self, kiosk: str, card: IdCard) -> None:
        card_type = card.card_type.name.lower()
        if not card.id_number_valid:
            log.warning("kiosk %s: %s card refused: invalid_card", kiosk, card_type)
            self.svc.kiosk_notice(
                kiosk,
                "invalid_card",
                "证件号码校验失败，请到导办台办理",
                "the card's ID number failed its check; please see the guide desk",
            )
            return
        # Chip and number must agree and the dates must be possible, or no ticket (and so no
        # age priority) comes from this card; the log names the reason, never the person.
        problem = card.problem(self.svc.clock().astimezone(self.cfg.hall.tz).date())
        if problem is not None:
            log.warning("kiosk %s: %s card refused: %s", kiosk, card_type, problem.code)
            self.svc.kiosk_notice(kiosk, problem.code, problem.message, problem.message_en)
            return
        holder = Holder(
            name=clean_text(card.name),  # the driver cleans already; a Holder is stored and shown
            id_number=card.id_number,
            sex=card.sex.label,
            birth=card.birth,
            nation=card.nation.label if card.nation else "",
            address=clean_text(card.address),
            card_type=card_type,
            authority=clean_text(card.authority),
            valid_to=card.valid_to,
            photo=card.photo or None,
        )
        try:
            await self.svc.card_read(kiosk, holder, card.card_type.name.lower())
        except HallctlError as exc:
            # Refusals (limit reached, closed) were already told to the kiosk screen by the service.
            log.info("kiosk %s: card swipe refused: %s", kiosk, exc.code)

    # ---- ticket printers ------------------------------------------------------------------

    async def _printer(self, dev: DeviceConfig) -> None:
        printer = EscPosPrinter(
            dev.id,
            self._port(dev),
            on_health=self._health(dev),
            baudrate=dev.baudrate or 9600,
            paper_width_dots=int(dev.options.get("paper_width_dots", 576)),
            status_mode=dev.printer_status,
        )
        self._run(dev, printer)

        async def handle(e: ev.Event) -> None:
            # The kiosk's printer is looked up at each job: a kiosk edited live prints on its new one.
            kiosk = self.cfg.kiosk_by_id(e.kiosk) if isinstance(e, ev.PrintRequested) else None
            if isinstance(e, ev.PrintRequested) and kiosk is not None and kiosk.printer == dev.id:
                await self._print(printer, e.kiosk, e.job)

        self._subscribe("printer", dev, handle, (ev.PrintRequested,))

    @staticmethod
    def ticket_print(job: ev.PrintJob) -> TicketPrint:
        """The decision's print job, as the ESC/POS driver takes it (no lookups, no recomputing)."""
        return TicketPrint(
            hall_name=job.hall_name,
            category_name=job.category_name,
            number=job.number,
            waiting_ahead=job.waiting_ahead,
            holder_masked=job.holder_masked,
            issued_at=job.issued_at,
            qr_payload=job.qr,
            footer=job.footer,
            window_hint=job.window_hint,
            priority_label=job.priority_label,
        )

    async def _print(self, printer: EscPosPrinter, kiosk: str, job: ev.PrintJob) -> None:
        which = {"ticket_id": job.ticket_id, "number": job.number}
        try:
            await printer.print_ticket(self.ticket_print(job))
        except (PrinterNotReady, PrintIncomplete) as exc:
            reason = getattr(exc, "reason", exc.code)
            message, message_en = PRINTER_NOTICES.get(reason, DEFAULT_NOTICE)
            log.warning("kiosk %s: ticket %s not printed: %s", kiosk, job.number, reason)
            await self._print_result(job, kiosk, False, reason)
            self.svc.kiosk_notice(kiosk, f"printer_{reason}", message, message_en, **which)
        except DeviceError as exc:
            log.warning("kiosk %s: ticket %s not printed: %s", kiosk, job.number, exc.code)
            await self._print_result(job, kiosk, False, "offline")
            self.svc.kiosk_notice(kiosk, "printer_offline", *DEFAULT_NOTICE, **which)
        else:
            await self._print_result(job, kiosk, True, None)
            self.svc.kiosk_notice(kiosk, "printed", "请取走号票", "please take your ticket", **which)

    async def _print_result(self, job: ev.PrintJob, kiosk: str, printed: bool, reason: str | None) -> None:
        """The ticket's durable print mark (``print_failed``); the notice goes out even if this fails."""
        try:
            await self.svc.print_result(job.ticket_id, kiosk, printed, reason)
        except HallctlError as exc:
            log.warning("kiosk %s: print state of %s not recorded: %s", kiosk, job.number, exc.code)

    # ---- LED window displays ---------------------------------------------------------------

    async def _led_bus(self, dev: DeviceConfig) -> None:
        # Addresses polled for health are those at start; what each call shows follows live edits.
        windows = self._led_windows(dev.id)

        def on_address(addr: int, h: Health) -> None:
            self.svc.device_health(f"{dev.id}-{addr}", "led", h.state, h.detail)

        bus = LedBus(
            dev.id,
            self._port(dev),
            protocol=dev.protocol or "hallframe",
            on_health=self._health(dev),
            on_address_health=on_address,
            addresses=list(windows.values()),
            baudrate=dev.baudrate or 9600,
        )
        self._run(dev, bus)

        async def handle(e: ev.Event) -> None:
            windows = self._led_windows(dev.id)
            addr_of = {f"{dev.id}-{a}": a for a in windows.values()} | {str(w): a for w, a in windows.items()}
            try:
                if isinstance(e, ev.TicketCalled) and e.window in windows:
                    await bus.show_call(windows[e.window], e.number, e.window)
                elif isinstance(e, ev.WindowState) and e.window in windows and e.state in ("idle", "paused"):
                    text = "暂停服务" if e.state == "paused" else f"{e.window}号窗口 欢迎您"
                    await bus.show_text(windows[e.window], text)
                elif isinstance(e, ev.DisplayText) and e.display in addr_of:
                    await bus.show_text(addr_of[e.display], e.text, effect="scroll")
            except DisplayRejected as exc:
                log.warning("%s: display refused text: %s", dev.id, exc.reason)
            except DeviceError as exc:
                log.info("%s: display not updated: %s", dev.id, exc.code)

        self._subscribe("led", dev, handle, (ev.TicketCalled, ev.WindowState, ev.DisplayText))

    # ---- evaluation pads --------------------------------------------------------------------

    async def _evalpad(self, dev: DeviceConfig) -> None:
        def on_key(level: int) -> None:
            window = self._window_of("pad", dev.id)
            if window is None:
                return
            self._spawn(self.svc.evaluate(window, level, "pad"), f"{dev.id}.key")

        def on_timeout() -> None:
            window = self._window_of("pad", dev.id)
            if window is None:
                return
            self._spawn(self.svc.evaluate(window, None, "pad_timeout"), f"{dev.id}.timeout")

        pad = EvalPad(
            dev.id,
            self._port(dev),
            address=dev.address or 1,
            on_key=on_key,
            on_timeout=on_timeout,
            on_health=self._health(dev),
            baudrate=dev.baudrate or 9600,
        )
        self._run(dev, pad)

        async def handle(e: ev.Event) -> None:
            if isinstance(e, ev.EvaluationRequested) and e.window == self._window_of("pad", dev.id):
                try:
                    await pad.start_rating(e.staff or "-", e.number)  # the pad needs an id; "-" = nobody signed in
                except DeviceError as exc:
                    log.info("%s: rating prompt not shown: %s", dev.id, exc.code)

        self._subscribe("pad", dev, handle, (ev.EvaluationRequested,))

    # ---- staff badge readers (PC/SC) ----------------------------------------------------------

    async def _badge(self, dev: DeviceConfig) -> None:
        from drivers.badge import BadgeReader

        reader_name = self.ctx.device_ports.get(dev.id) or dev.port or ""  # "" = the first reader

        def on_badge(uid: str) -> None:
            window = self._window_of("badge_reader", dev.id)
            if window is not None:
                self._spawn(self.svc.badge_shown(window, uid), f"{dev.id}.badge")

        def on_removed() -> None:
            window = self._window_of("badge_reader", dev.id)
            if window is not None:
                self._spawn(self.svc.badge_removed(window), f"{dev.id}.removed")

        reader = BadgeReader(dev.id, reader_name, on_badge=on_badge, on_removed=on_removed, on_health=self._health(dev))
        self._run(dev, reader)

    # ---- temperature / humidity -----------------------------------------------------------------

    async def _modbus(self, dev: DeviceConfig) -> None:
        from drivers.modbus_sensor import ModbusSensor

        def on_reading(r: Any) -> None:
            sensor = next((s.id for s in self.cfg.sensor if s.source == "modbus" and s.device == dev.id), None)
            if sensor is not None:
                self.svc.sensor_reading(sensor, r.temperature, r.humidity)  # in memory: no task per reading

        driver = ModbusSensor(
            dev.id,
            self._port(dev),
            device_id=dev.address or 1,
            on_reading=on_reading,
            on_health=self._health(dev),
            baudrate=dev.baudrate or 9600,
            parity=dev.parity,
            interval=float(dev.options.get("interval", 5.0)),
        )
        self._run(dev, driver)
