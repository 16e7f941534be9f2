"""Kiosk commands: a visitor at a kiosk asks for help (需要帮助), the guide desk sees it at once."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hallctl import engine
from hallctl import events as ev
from hallctl.commands.args import Args
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.context import HallContext
from hallctl.errors import Forbidden


class HelpArgs(Args):
    kiosk: str = Field(min_length=1, max_length=32)


@command(
    "kiosk.help",
    HelpArgs,
    ("kiosk",),
    http=HttpRoute("POST", "/kiosks/{kiosk}/help", errors={403: ("wrong_kiosk",), 404: ("unknown_kiosk",)}),
    mqtt="help",  # a kiosk's own user publishes cmd/kiosk/<id>/help (hallctl.mqtt.acl.kiosk_scope)
)
async def _help(ctx: HallContext, a: HelpArgs, c: Call) -> dict[str, Any]:
    """An alert like the supervision's own (``GET /alerts``, the guide desk, the big screen), not a queue change.

    It goes on the bus as :class:`~hallctl.events.Alert`, the way the supervision raises
    alerts, so whatever keeps and shows alerts shows this one too; nothing is written.
    """
    kiosk = engine.kiosk_config(ctx.cfg, a.kiosk)
    if not c.principal.acts_for_kiosk(a.kiosk):
        raise Forbidden("wrong_kiosk", "此令牌不能代表该取号机", "this token may not act for that kiosk")
    where = f"{kiosk.floor}楼{kiosk.id}号取号机"
    where_en = f"kiosk {kiosk.id} (floor {kiosk.floor})"
    alert = ev.Alert(
        at=ctx.service.clock(),
        alert="help_requested",
        severity="warning",
        message=f"{where}有群众需要帮助",
        message_en=f"A visitor at {where_en} needs help",
        subject=kiosk.id,
        data={"kiosk": kiosk.id, "floor": kiosk.floor},
    )
    ctx.bus.publish(alert)
    return {"alert": alert.to_dict()}
