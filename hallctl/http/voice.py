"""Announcement audio rendered offline with espeak-ng, cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from pathlib import Path

from hallctl.errors import NotFound

_voice_locks: dict[str, asyncio.Lock] = {}


async def render_voice(directory: Path, text: str) -> Path:
    """Render an announcement with espeak-ng (Mandarin, offline) once; later calls hit the cache."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a no-op after the first call
    name = hashlib.sha256(text.encode()).hexdigest()[:20] + ".wav"
    path = directory / name
    lock = _voice_locks.setdefault(name, asyncio.Lock())
    async with lock:
        if path.exists():
            return path
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise NotFound("voice_unavailable", "espeak-ng is not installed")
        tmp = path.with_suffix(".tmp")
        proc = await asyncio.create_subprocess_exec(
            exe,
            "-v",
            "cmn",
            "-s",
            "150",
            "-w",
            str(tmp),
            text,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise NotFound("voice_failed", f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
        tmp.rename(path)
    return path
