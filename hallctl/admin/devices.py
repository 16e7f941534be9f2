"""What a live edit of ``[[device]]`` and ``[[kiosk]]`` may do, checked before the file is written.

The device manager swaps a changed device's driver live (stop the old, start the new), so
port, baudrate, address and a printer's status mode take effect at once. Two things refuse:

* deleting a device that a window, kiosk or sensor still names: the config model would
  refuse it too, but as ``unknown device`` on the referrer's key; the person deleting wants
  to know *who* uses it, so it is named here, in both languages (``409 device_in_use``);
* ``simulate`` turned on or off, or a new simulated device: simulators are started once, by
  the simulation component before the devices, and are not part of a live swap, so such an
  edit answers ``409 needs_restart`` and changes nothing, rather than half-applying.
"""

from __future__ import annotations

from hallctl.config import Config
from hallctl.errors import Conflict

WINDOW_REFS = (("led", "LED屏", "LED"), ("pad", "评价器", "pad"), ("badge_reader", "工牌读卡器", "badge"))


def users(cfg: Config, dev_id: str) -> list[tuple[str, str]]:
    """Who names the device, as (Chinese, English) labels: windows, kiosks, sensors."""
    out: list[tuple[str, str]] = []
    for w in cfg.window:
        for attr, zh, en in WINDOW_REFS:
            if getattr(w, attr) == dev_id:
                out.append((f"{w.number}号窗口（{zh}）", f"window {w.number} ({en})"))
    for k in cfg.kiosk:
        for attr, zh, en in (("reader", "身份证阅读器", "reader"), ("printer", "打印机", "printer")):
            if getattr(k, attr) == dev_id:
                out.append((f"自助机 {k.id}（{zh}）", f"kiosk {k.id} ({en})"))
    for s in cfg.sensor:
        if s.source == "modbus" and s.device == dev_id:
            out.append((f"传感器 {s.id}", f"sensor {s.id}"))
    return out


def check_delete(cfg: Config, dev_id: str) -> None:
    used = users(cfg, dev_id)
    if used:
        raise Conflict(
            "device_in_use",
            f"设备 {dev_id} 仍被 {'、'.join(zh for zh, _ in used)} 使用，请先改掉这些引用再删除",
            f"device {dev_id} is still used by {', '.join(en for _, en in used)}; change them before deleting it",
            {"used_by": [en for _, en in used]},
        )


def check_live(old: Config, new: Config) -> None:
    """Refuse (``needs_restart``) a device change the running daemon cannot take without a restart."""
    before = {d.id: d for d in old.device}
    for d in new.device:
        prev = before.get(d.id)
        if (prev is None and d.simulate) or (prev is not None and prev.simulate != d.simulate):
            raise Conflict(
                "needs_restart",
                f"设备 {d.id} 的模拟开关（simulate）改变需要重启服务；本次未做任何更改",
                f"device {d.id}: turning 'simulate' on or off needs a restart of the daemon; nothing was changed",
            )
