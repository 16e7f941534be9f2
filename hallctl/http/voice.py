"""Announcement audio rendered offline (:mod:`hallctl.voice`), cached on disk, bounded.

Only calls that happened reach it (the route looks the call up first), and each call
is rendered as it happens (:meth:`VoiceCache.on_call`, a bus subscriber), so the
screen's request finds the clip ready: rendering is never on the call's path. The
cache keeps at most ``max_files`` clips and ``max_bytes`` bytes (oldest dropped
first), and it never competes with the database for space: before rendering it
checks the free space of the filesystem that holds the database, and refuses (503
``voice_unavailable``) when a clip would bring it below the reserve
(``max(reserve_bytes, reserve_fraction × size)``). Tickets matter more than voices.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from hallctl import events as ev
from hallctl.config import Config
from hallctl.errors import HallctlError
from hallctl.voice import synth
from hallctl.voice.spoken import NumberReading, announcement_words

log = logging.getLogger(__name__)

# A call's clip is pre-rendered this long after the call, not at once: the call's own messages
# (MQTT, SSE, LED) go out first instead of sharing the CPU with the render's thread hops and the
# renderer's ~10 ms burst (bench/mqtt_latency.py: call → MQTT p99 ratio 2.5 → 1.2, issue 12 goal 3).
# The screen asks for the clip only after the call reached it, and then waits for the render anyway.
PRERENDER_DELAY_S = 0.02

MAX_FILES = 500
MAX_BYTES = 20 * 1024 * 1024
RESERVE_BYTES = 50 * 1024 * 1024
RESERVE_FRACTION = 0.05
CLIP_ESTIMATE = 512 * 1024  # a generous bound of one announcement (about 3 s, 22 kHz 16-bit mono is ~130 KiB)


class VoiceUnavailable(HallctlError):
    """No clip now: the database's filesystem is short of space (or espeak-ng is missing)."""

    http_status = 503
    title = "Service unavailable"


class VoiceCache:
    """One per API app: renders each distinct text once, concurrent requests for it wait for that one."""

    def __init__(
        self,
        directory: Path,
        max_files: int = MAX_FILES,
        *,
        max_bytes: int = MAX_BYTES,
        guard_path: Path | None = None,
        reserve_bytes: int = RESERVE_BYTES,
        reserve_fraction: float = RESERVE_FRACTION,
        number_reading: NumberReading = "digits",
        words_per_minute: int = 150,
        chime: bool = True,
    ) -> None:
        self.directory = directory
        self.number_reading: NumberReading = number_reading
        self.words_per_minute = words_per_minute
        self.chime = chime
        self.renderer = synth.Renderer()
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.guard_path = guard_path  # a path on the database's filesystem (its directory)
        self.reserve_bytes = reserve_bytes
        self.reserve_fraction = reserve_fraction
        self.refused = 0
        self.rendered = 0
        self.evicted = 0
        self._sizes: dict[str, int] = {}  # clip -> bytes, oldest first
        # _prepare and _added run in worker threads, and two clips can render at once (a call's
        # pre-render and a screen's request for another clip): their bookkeeping takes turns.
        self._books = threading.Lock()
        self._bytes = 0
        self._scanned = False
        self._locks: dict[str, asyncio.Lock] = {}  # only while a text is being rendered
        self._scan()  # at start-up: at most max_files entries

    @classmethod
    def for_config(cls, cfg: Config, default_dir: Path) -> VoiceCache:
        """The cache as ``[screen]`` configures it, guarding the database's filesystem."""
        s = cfg.screen
        return cls(
            Path(s.voice_cache_dir) if s.voice_cache_dir else default_dir,
            max_files=s.voice_cache_files,
            max_bytes=int(s.voice_cache_mb * 2**20),
            guard_path=Path(cfg.store.path).resolve().parent,
            reserve_bytes=int(s.voice_reserve_mb * 2**20),
            number_reading=s.number_reading,
            words_per_minute=s.voice_rate,
            chime=s.chime,
        )

    def words(self, call: ev.TicketCalled) -> str:
        """What the voice says for ``call``: the event's own spoken sentence (the caption, in words)."""
        return call.spoken or announcement_words(call.number, call.window, self.number_reading)

    async def render_call(self, call: ev.TicketCalled) -> Path:
        return await self.render(self.words(call))

    async def on_call(self, event: ev.Event) -> None:
        """Bus subscriber: render each call as it happens, so the screen's request finds it ready."""
        if not isinstance(event, ev.TicketCalled):
            return
        await asyncio.sleep(PRERENDER_DELAY_S)
        try:
            await self.render_call(event)
        except HallctlError as exc:  # the screen's own request will say so; the call itself is fine
            log.warning("voice: %s not pre-rendered: %s", event.number, exc.code)

    async def render(self, text: str) -> Path:
        key = f"{text}|{self.words_per_minute}|{int(self.chime)}|{synth.SAMPLE_RATE}"
        name = hashlib.sha256(key.encode()).hexdigest()[:20] + ".wav"
        path = self.directory / name
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            async with lock:
                if not path.exists():
                    await asyncio.to_thread(self._prepare)
                    await self.renderer.render(
                        text, path, words_per_minute=self.words_per_minute, with_chime=self.chime, then=self._added
                    )
                    self.rendered += 1
        finally:
            if not lock.locked() and self._locks.get(name) is lock:
                del self._locks[name]
        return path

    # ---- bounds (run in a thread: stat, unlink, statvfs) -----------------------------------

    def _scan(self) -> None:
        if self._scanned:
            return
        found: list[tuple[float, str, int]] = []
        with contextlib.suppress(FileNotFoundError):
            for p in self.directory.glob("*.wav"):
                with contextlib.suppress(FileNotFoundError):
                    st = p.stat()
                    found.append((st.st_mtime, p.name, st.st_size))
            for p in self.directory.glob("*.tmp"):  # left by a render that was cut short
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        # Oldest first: the dict's order is the eviction order from here on (no stat per render).
        self._sizes = {name: size for _, name, size in sorted(found)}
        self._bytes = sum(self._sizes.values())
        self._scanned = True

    def reserve_for(self, total: int) -> int:
        return max(self.reserve_bytes, int(self.reserve_fraction * total))

    def _prepare(self) -> None:
        """Refuse when a clip would bring the database's filesystem below its reserve."""
        with self._books:
            self._scan()
            estimate = max([CLIP_ESTIMATE, *self._sizes.values()])
        self.directory.mkdir(parents=True, exist_ok=True)
        for where in [p for p in (self.guard_path, self.directory) if p is not None]:
            usage = shutil.disk_usage(where if where.exists() else where.parent)
            if usage.free - estimate < self.reserve_for(usage.total):
                self.refused += 1
                log.warning(
                    "voice: not rendering, %s has %d MiB free (reserve %d MiB)",
                    where,
                    usage.free // 2**20,
                    self.reserve_for(usage.total) // 2**20,
                )
                raise VoiceUnavailable(
                    "voice_unavailable",
                    "磁盘空间不足，暂不生成语音",
                    "too little free disk space to render the announcement now",
                )

    def _added(self, keep: Path) -> None:
        """Count the new clip (newest last), then drop the oldest ones beyond the caps.

        The cache's own order is its age: O(1) per clip, not a ``stat`` of every clip. It runs
        with the rename that put the clip in place (:meth:`synth.Renderer.render`'s ``then``).
        """
        with self._books:
            self._count_and_evict(keep)

    def _count_and_evict(self, keep: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            size = keep.stat().st_size
            self._bytes -= self._sizes.pop(keep.name, 0)
            self._sizes[keep.name] = size
            self._bytes += size
        while len(self._sizes) > 1 and (len(self._sizes) > self.max_files or self._bytes > self.max_bytes):
            name = next(iter(self._sizes))
            if name == keep.name:
                break
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
            self._bytes -= self._sizes.pop(name)
            self.evicted += 1

    async def close(self) -> None:
        await self.renderer.close()

    def health(self) -> dict[str, Any]:
        return {
            "dir": str(self.directory),
            "files": len(self._sizes),
            "bytes": self._bytes,
            "max_files": self.max_files,
            "max_bytes": self.max_bytes,
            "rendered": self.rendered,
            "renderer_starts": self.renderer.starts,
            "evicted": self.evicted,
            "refused_low_disk": self.refused,
        }
