"""Staff photos for 亮牌上岗 (the clerk's photo beside their name at the window).

Kept as files in the state directory (``<state dir>/staff-photos/<staff id>.jpg|.png``), not
in the config file or the database: they are pictures for display, replaced now and then
from the console. Only JPEG and PNG are accepted (by their first bytes) and at most
:data:`MAX_BYTES` (the console scales a photo down in the browser before sending it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from hallctl.errors import Refused

MAX_BYTES = 60 * 1024
_KINDS = {b"\xff\xd8\xff": ("jpg", "image/jpeg"), b"\x89PNG\r\n\x1a\n": ("png", "image/png")}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class StaffPhotos:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "staff-photos"

    def _paths(self, staff_id: str) -> list[Path]:
        if not _ID.match(staff_id):
            return []
        return [self.dir / f"{staff_id}.{ext}" for ext, _ in _KINDS.values()]

    async def save(self, staff_id: str, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_BYTES:
            raise Refused("photo_too_large", "照片太大（最大 60 KB）", "the photo is too large (60 KB at most)")
        kind = next((v for magic, v in _KINDS.items() if data.startswith(magic)), None)
        if kind is None or not _ID.match(staff_id):
            raise Refused("bad_photo", "照片须为 JPEG 或 PNG 格式", "a photo must be a JPEG or PNG image")
        ext = kind[0]

        def write() -> None:
            self.dir.mkdir(parents=True, exist_ok=True)
            target = self.dir / f"{staff_id}.{ext}"
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            for other in self._paths(staff_id):
                if other != target and other.exists():
                    other.unlink()

        await asyncio.to_thread(write)
        return {"bytes": len(data), "type": kind[1], "sha256": hashlib.sha256(data).hexdigest()}

    def find(self, staff_id: str) -> tuple[str, bytes] | None:
        for path, (_, media) in zip(self._paths(staff_id), _KINDS.values(), strict=False):
            try:
                return media, path.read_bytes()
            except OSError:
                continue
        return None
