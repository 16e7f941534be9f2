"""Announcement audio rendered offline with espeak-ng, cached on disk, bounded.

Only texts of calls that happened reach it (the route looks the call up first), and
the cache keeps at most ``max_files`` clips (oldest dropped first), so neither a
client nor a long year of calls can fill the state directory with audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import subprocess
from pathlib import Path

from hallctl.errors import NotFound

MAX_FILES = 500


class VoiceCache:
    """One per API app: renders each distinct text once, concurrent requests for it wait for that one."""

    def __init__(self, directory: Path, max_files: int = MAX_FILES) -> None:
        self.directory = directory
        self.max_files = max_files
        self._locks: dict[str, asyncio.Lock] = {}  # only while a text is being rendered

    async def render(self, text: str) -> Path:
        name = hashlib.sha256(text.encode()).hexdigest()[:20] + ".wav"
        path = self.directory / name
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            async with lock:
                if not path.exists():
                    await _espeak(self.directory, path, text)
                    await asyncio.to_thread(self._evict, path)
        finally:
            if not lock.locked() and self._locks.get(name) is lock:
                del self._locks[name]
        return path

    def _evict(self, keep: Path) -> None:
        clips = sorted(self.directory.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in clips[: max(0, len(clips) - self.max_files)]:
            if old != keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()


async def _espeak(directory: Path, path: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a no-op after the first call
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise NotFound("voice_unavailable", "espeak-ng is not installed")
    tmp = path.with_suffix(".tmp")
    proc = await asyncio.create_subprocess_exec(
        exe, "-v", "cmn", "-s", "150", "-w", str(tmp), text, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise NotFound("voice_failed", f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
    tmp.rename(path)
