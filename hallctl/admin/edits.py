"""Live configuration edits: validate with the config model, check the queue, write the file, swap live.

One edit at a time (the console's ``edit_lock``). The order keeps the file the source of
truth: (1) the edited document must pass :func:`hallctl.config.parse`; (2) the running queue
must allow it (:func:`hallctl.service.reconfigure.check`); (3) the file is replaced
atomically; (4) the service takes the new config under its lock and publishes
``ConfigChanged``. If (4) still refuses (the queue changed in between), the old file text
is put back. Then the audit row (before/after of the entry) is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hallctl.admin import configfile, devices
from hallctl.admin.accounts import AdminConsole, Session
from hallctl.config import Config
from hallctl.errors import Refused
from hallctl.service import HallService, reconfigure


async def apply_edit(
    console: AdminConsole,
    svc: HallService,
    s: Session,
    table: str,
    key: str,
    fields: dict[str, Any] | None,
    appliers: Sequence[Callable[[Config], Awaitable[None]]] = (),
) -> dict[str, Any] | None:
    """Create/change (``fields``) or delete (``None``) one entry of ``table``, or edit a section (``key`` "").

    ``appliers`` (the context's ``config_appliers``: the device manager) are awaited after the
    swap, so the answer comes once a changed device's new driver runs.
    """
    console.require_edit(s)
    path = console.config_path
    if path is None:
        raise Refused(
            "config_not_writable",
            "本实例没有配置文件，不能在线修改",
            "this daemon was started without a config file; live edits are off",
        )
    async with console.edit_lock:
        old_text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        doc = configfile.parse(old_text)
        before: dict[str, Any] | None
        after: dict[str, Any] | None
        if table in configfile.SECTIONS:
            before, after = configfile.put_section(doc, table, fields or {})
            target = table
        else:
            before, after = configfile.put_entry(doc, table, key, fields)
            target = f"{table}:{key}"
        if before == after:
            return after
        if table == "device" and fields is None:
            devices.check_delete(svc.cfg, key)  # who uses it, named, before the model's "unknown device"
        new = configfile.validate(doc)
        devices.check_live(svc.cfg, new)
        reconfigure.check(svc, new)
        try:
            await asyncio.to_thread(configfile.write_atomic, path, doc.as_string())
        except OSError as exc:
            raise Refused(
                "config_not_writable",
                f"无法写入配置文件（{exc.strerror}），未做任何更改",
                f"cannot write the config file ({exc.strerror}); nothing was changed",
            ) from exc
        try:
            await svc.reconfigure(new, (table,))
        except reconfigure.ConfigInUse:
            await asyncio.to_thread(configfile.write_atomic, path, old_text)
            raise
        for apply in appliers:
            await apply(new)
        console.cfg = new
        action = f"config.{table}." + ("delete" if after is None else "create" if before is None else "update")
        await console.store.audit(console.clock(), s.name, action, target, before, after)
        return after
