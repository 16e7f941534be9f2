"""Hall-wide commands: screens and climate."""

from __future__ import annotations

from typing import Any

from hallctl.commands.args import ClimateArgs, DisplayArgs
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.context import HallContext

# ---- screens and climate ----------------------------------------------------------------------


@command(
    "display.show",
    DisplayArgs,
    ("admin",),
    http=HttpRoute("POST", "/displays/{display}/show"),
    mqtt="display/{display}/show",
)
async def _display(ctx: HallContext, a: DisplayArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    from hallctl.events import DisplayText

    svc.bus.publish(DisplayText(at=svc.clock(), display=a.display, text=a.text, seconds=a.seconds))
    return {"display": a.display, "text": a.text}


@command(
    "climate.set",
    ClimateArgs,
    ("hvac",),
    http=HttpRoute(
        "POST", "/climate/{zone}", errors={404: ("unknown_zone",), 422: ("bad_mode", "bad_target", "bad_until")}
    ),
    mqtt="climate/{zone}/set",
)
async def _climate(ctx: HallContext, a: ClimateArgs, c: Call) -> dict[str, Any]:
    state = await ctx.climate.set(a.zone, a.mode, a.target, until=a.until, minutes=a.minutes)
    return {"climate": state.to_dict()}
