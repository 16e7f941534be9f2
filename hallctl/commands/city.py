"""The city's command: replay a range of the event log to the central (docs/city.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from hallctl.commands.args import Args
from hallctl.commands.table import Call, HttpRoute, command
from hallctl.context import HallContext
from hallctl.errors import Conflict


class ReplayArgs(Args):
    from_seq: int = Field(ge=1, strict=True)
    to_seq: int = Field(ge=1, strict=True)

    @model_validator(mode="after")
    def _ordered(self) -> ReplayArgs:
        if self.to_seq < self.from_seq:
            raise ValueError("to_seq must not be below from_seq")
        return self


class CityFeedOff(Conflict):
    """``city.replay`` on a hall whose ``[city] feed`` is off: there is no feed to replay on."""


@command(
    "city.replay",
    ReplayArgs,
    ("central",),
    http=HttpRoute("POST", "/city/replay", status=202, errors={409: ("city_feed_off", "replay_busy")}),
    mqtt="city/replay",
)
async def _replay(ctx: HallContext, a: ReplayArgs, c: Call) -> dict[str, Any]:
    # Only queued here: the feed sends the rows at its own pace, so a large range never holds
    # the command's transport (or the queue) while thousands of rows go out.
    if ctx.city_replay is None:
        raise CityFeedOff(
            "city_feed_off", "本厅未开启城市数据推送（[city] feed）", "the city feed is off ([city] feed)"
        )
    return {"replay": await ctx.city_replay(a.from_seq, a.to_seq)}
