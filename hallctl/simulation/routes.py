"""Admin routes that drive the simulated devices of a demo (``hallctl simulate ...``).

Only mounted when the config has simulated devices. They act on the simulator
side (present a card, press a key, run out of paper), so what follows goes
through the real drivers exactly as it would with hardware.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from hallctl.errors import NotFound, Refused, SimulatorUnavailable
from hallctl.http.api import Auth
from hallctl.simulation.devices import SimulatedDevices


class SwipeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: str = Field(default="0", min_length=1, max_length=32)


class PressBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Annotated[int, Field(ge=0, le=9)] = 5


class BadgeBody(BaseModel):
    """Which badge to lay on the reader: a UID, a staff member's badge, or (empty) the first staff badge."""

    model_config = ConfigDict(extra="forbid")
    uid: str | None = Field(default=None, pattern=r"^(?:[0-9A-Fa-f]{2}){2,16}$")  # whole bytes
    staff: str | None = Field(default=None, max_length=32)
    remove: bool = False


class PaperBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str = Field(max_length=16, pattern=r"^(ok|near_end|out)$")


class SensorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(ge=-50, le=100, allow_inf_nan=False)
    humidity: float = Field(ge=0, le=100, allow_inf_nan=False)


class WeatherBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weather: str | None = Field(default=None, pattern=r"^(summer|winter)$")
    temperature: float | None = Field(default=None, ge=-40, le=50, allow_inf_nan=False)
    speed: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False)


def sim_router(devices: SimulatedDevices) -> APIRouter:
    router = APIRouter(prefix="/api/v1/sim", tags=["simulators"])
    cfg = devices.cfg

    def card(key: str) -> Any:
        from drivers.sim.idcard import SAMPLE_CARDS

        if key.isascii() and key.isdigit():  # "²" is a digit to str.isdigit, not to int()
            cards = list(SAMPLE_CARDS.values())
            if int(key) >= len(cards):
                raise NotFound("unknown_card", f"sample cards are 0..{len(cards) - 1}")
            return cards[int(key)]
        if key not in SAMPLE_CARDS:
            raise NotFound("unknown_card", f"sample cards: {', '.join(SAMPLE_CARDS)}")
        return SAMPLE_CARDS[key]

    def kiosk_reader(kiosk: str) -> Any:
        k = cfg.kiosk_by_id(kiosk)
        if k is None or k.reader is None:
            raise NotFound("unknown_kiosk", f"no kiosk {kiosk} with a card reader")
        return devices.sim(k.reader)

    @router.get("/cards")
    async def cards(p: Auth) -> list[dict[str, Any]]:
        from drivers.sim.idcard import SAMPLE_CARDS

        p.require("admin")
        return [
            {"index": i, "key": k, "name": c.masked_name, "id": c.masked_id}
            for i, (k, c) in enumerate(SAMPLE_CARDS.items())
        ]

    @router.post("/kiosk/{kiosk}/swipe")
    async def swipe(kiosk: str, body: SwipeBody, p: Auth) -> dict[str, Any]:
        p.require("admin")
        sim, c = kiosk_reader(kiosk), card(body.card)
        sim.remove()
        sim.present(c)
        return {"kiosk": kiosk, "card": c.masked_name}

    @router.post("/kiosk/{kiosk}/remove")
    async def remove(kiosk: str, p: Auth) -> dict[str, Any]:
        p.require("admin")
        kiosk_reader(kiosk).remove()
        return {"kiosk": kiosk}

    @router.post("/window/{window}/press")
    async def press(window: int, body: PressBody, p: Auth) -> dict[str, Any]:
        p.require("admin")
        w = cfg.window_by_number(window)
        if w is None or w.pad is None:
            raise NotFound("unknown_pad", f"window {window} has no evaluation pad")
        devices.sim(w.pad).press(body.level)
        return {"window": window, "level": body.level}

    @router.post("/window/{window}/badge")
    async def badge(window: int, body: BadgeBody, p: Auth) -> dict[str, Any]:
        p.require("admin")
        w = cfg.window_by_number(window)
        if w is None or w.badge_reader is None:
            raise NotFound("unknown_reader", f"window {window} has no badge reader")
        uid = None if body.remove else body.uid or badge_of(body.staff)
        try:
            await devices.sim(w.badge_reader).show(bytes.fromhex(uid) if uid else None)
        except OSError as exc:  # vpcd (pcscd) not there, or gone
            raise SimulatorUnavailable(
                "badge_reader_unavailable",
                f"虚拟工牌读卡器不可用（pcscd/vpcd）：{exc}",
                f"the virtual badge reader is not available (pcscd/vpcd): {exc}",
            ) from exc
        return {"window": window, "badge": uid}

    def badge_of(staff_id: str | None) -> str:
        """The configured badge of a staff member (the first one with a badge when none is named)."""
        for st in cfg.staff:
            if st.badge and (staff_id is None or st.id == staff_id):
                return st.badge
        if staff_id is None:
            raise NotFound("no_staff_badge", "配置中没有带工牌的工作人员", "no staff member in the config has a badge")
        raise NotFound(
            "unknown_staff", f"没有工号为 {staff_id} 且有工牌的工作人员", f"no staff member {staff_id} with a badge"
        )

    @router.post("/device/{device}/paper")
    async def paper(device: str, body: PaperBody, p: Auth) -> dict[str, Any]:
        p.require("admin")
        sim = devices.sim(device)
        if not hasattr(sim, "set_paper"):
            raise Refused("not_a_printer", f"{device} is not a printer")
        sim.set_paper(body.state)
        return {"device": device, "paper": body.state}

    def set_plugged(device: str, plugged: bool) -> dict[str, Any]:
        sim = devices.sim(device)
        action = "plug" if plugged else "unplug"
        if not hasattr(sim, action):
            raise Refused("cannot_unplug", f"{device} cannot be {'plugged' if plugged else 'unplugged'}")
        getattr(sim, action)()
        return {"device": device, "plugged": plugged}

    @router.post("/device/{device}/unplug")
    async def unplug(device: str, p: Auth) -> dict[str, Any]:
        p.require("admin")
        return set_plugged(device, False)

    @router.post("/device/{device}/plug")
    async def plug(device: str, p: Auth) -> dict[str, Any]:
        p.require("admin")
        return set_plugged(device, True)

    @router.post("/sensor/{sensor}")
    async def sensor(sensor: str, body: SensorBody, p: Auth) -> dict[str, Any]:
        p.require("admin")
        s = next((s for s in cfg.sensor if s.id == sensor), None)
        if s is None or s.device is None:
            raise NotFound("unknown_sensor", f"no simulated modbus sensor {sensor}")
        devices.sim(s.device).set(body.temperature, body.humidity)
        return {"sensor": sensor, "temperature": body.temperature, "humidity": body.humidity}

    @router.post("/weather")
    async def weather(body: WeatherBody, p: Auth) -> dict[str, Any]:
        """The simulated rooms' weather (a design day or a constant temperature) and clock speed."""
        p.require("admin")
        return devices.climate.set_weather(body.weather, body.temperature, body.speed)

    @router.get("/weather")
    async def weather_now(p: Auth) -> dict[str, Any]:
        p.require("admin", "display")
        return devices.climate.status()

    @router.get("/printers/{device}/tickets")
    async def printed(device: str, p: Auth) -> list[dict[str, Any]]:
        p.require("admin", "display", "kiosk", "guide")
        sim = devices.sim(device)
        return [
            {"index": i, "lines": t.text_lines, "png": f"/api/v1/sim/printers/{device}/tickets/{i}.png"}
            for i, t in enumerate(getattr(sim, "tickets", []))
        ]

    @router.get("/printers/{device}/tickets/{index}.png")
    async def printed_png(device: str, index: int, p: Auth) -> FileResponse:
        p.require("admin", "display", "kiosk", "guide")
        paths = devices.printed(device)
        if index == -1 and paths:
            index = len(paths) - 1
        if not 0 <= index < len(paths):
            raise NotFound("unknown_ticket", "no such printed ticket")
        return FileResponse(paths[index], media_type="image/png")

    @router.get("/led/{device}/{address}")
    async def led(device: str, address: int, p: Auth) -> dict[str, Any]:
        p.require("admin", "display")
        screen = devices.sim(device).screen(address)
        return {
            "device": device,
            "address": address,
            "text": screen.text,
            "effect": screen.effect,
            "brightness": screen.brightness,
        }

    return router
