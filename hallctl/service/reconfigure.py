"""Whether a new configuration may replace the running one without harming the queue.

A live edit (admin console) must not strand a visitor: a category that still has people
waiting, a window with a visitor at it, or a clerk signed in cannot be removed. Checked
under the service's lock, on the service's own queries, right before the swap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hallctl.config import Config
from hallctl.errors import Conflict

if TYPE_CHECKING:
    from hallctl.service import HallService


class ConfigInUse(Conflict):
    """The change would break the running queue; nothing was changed."""


def check(svc: HallService, new: Config) -> None:
    """Raise :class:`ConfigInUse` (bilingual) when ``new`` would remove something the queue uses now."""
    old = svc.cfg
    kept_categories = {c.prefix for c in new.category}
    for c in old.category:
        if c.prefix in kept_categories:
            continue
        waiting = svc.queue_state(c.prefix).waiting
        if waiting:
            raise ConfigInUse(
                "category_in_use",
                f"业务类别 {c.prefix}（{c.name}）还有 {waiting} 位群众在等候，不能删除；请先办结或转移",
                f"category {c.prefix} ({c.name_en or c.name}) still has {waiting} waiting; "
                "serve or transfer them before deleting it",
            )
    kept_windows = {w.number for w in new.window}
    for w in old.window:
        view = svc.window_queue(w.number)
        current = view.current
        if w.number not in kept_windows:
            if current is not None and current.state in ("called", "serving"):
                raise ConfigInUse(
                    "window_in_use",
                    f"{w.number}号窗口正在办理 {current.number}，不能删除",
                    f"window {w.number} is serving {current.number}; it cannot be deleted now",
                )
            if view.state.staff:
                raise ConfigInUse(
                    "window_in_use",
                    f"{w.number}号窗口有工作人员在岗，请先签退再删除",
                    f"staff are signed in at window {w.number}; sign them out before deleting it",
                )
        if current is not None and current.state in ("called", "serving") and current.category not in kept_categories:
            raise ConfigInUse(
                "category_in_use",
                f"业务类别 {current.category} 正在{w.number}号窗口办理，不能删除",
                f"category {current.category} is being served at window {w.number}; it cannot be deleted now",
            )
    kept_staff = {s.id for s in new.staff}
    for w in old.window:
        staff = svc.window_state(w.number).staff
        if staff and staff not in kept_staff:
            raise ConfigInUse(
                "staff_in_use",
                f"工作人员 {staff} 正在{w.number}号窗口在岗，请先签退再删除",
                f"staff {staff} is signed in at window {w.number}; sign them out before deleting",
            )
