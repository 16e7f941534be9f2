"""Issue 10 item 4: the voice endpoint never fills the database's filesystem.

Calls that happened are voiced with a display token (the one in a public screen's
URL); the clip cache stays under ``[screen] voice_cache_mb``; when rendering would
bring the database's filesystem below its reserve the endpoint answers 503
``voice_unavailable`` and issuing tickets still works.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hallctl import auth
from hallctl.daemon import Hall
from tests.core.core_helpers import FakeClock, LiveHall, make_config

CAP_MB = 1.0


@contextlib.asynccontextmanager
async def live_hall(tmp_path: Path, **over: Any) -> AsyncIterator[LiveHall]:
    """The core tests' base hall, in-process on port 0, with admin, kiosk and display tokens."""
    hall = Hall(
        make_config(store={"path": str(tmp_path / "hall.db")}, **over), clock=FakeClock(), state_dir=tmp_path / "state"
    )
    await hall.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20) as client:
            live = LiveHall(hall, client)
            for role in ("admin", "kiosk", "display"):
                live.tokens[role] = await auth.create_token(hall.store, role)
            yield live
    finally:
        await hall.stop()


def wav_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.wav"))


def cache_story(live: LiveHall, directory: Path) -> str:
    """What a failure needs to be understood: the clips on disk (oldest first) against the cache's own count."""
    on_disk = sorted((p.stat().st_mtime_ns, p.name, p.stat().st_size) for p in directory.glob("*"))
    app = live.hall.api.app
    said = app.state.voices.health() if app is not None else None
    return f"on disk {[(name, size) for _, name, size in on_disk]}; cache says {said}"


def wav_count(directory: Path) -> int:
    return len(list(directory.glob("*.wav")))


async def test_forty_distinct_calls_keep_the_cache_under_its_byte_cap(tmp_path: Path) -> None:
    cache_dir = tmp_path / "voice-cache"
    async with live_hall(tmp_path, screen={"voice_cache_mb": CAP_MB, "voice_cache_dir": str(cache_dir)}) as live:
        await forty_calls(live, cache_dir)


async def forty_calls(live: LiveHall, cache_dir: Path) -> None:
    svc = live.svc
    await svc.sign_in(1, "0231")
    largest = 0
    for _ in range(40):
        t = (await svc.issue("A")).ticket
        called = await svc.call_next(1)
        assert called is not None and called.id == t.id
        r = await live.client.get(f"/api/v1/voice/{t.id}.wav", headers=live.auth("display"))
        assert r.status_code == 200, r.text
        assert r.content[:4] == b"RIFF"
        assert wav_bytes(cache_dir) <= CAP_MB * 2**20, cache_story(live, cache_dir)
        largest = max(largest, len(r.content))
    assert 40 * largest > CAP_MB * 2**20  # without the cap, the clips would not have fit
    health = (await live.client.get("/api/v1/health", headers=live.auth("admin"))).json()
    voice: dict[str, Any] = health["voice"]
    assert voice["dir"] == str(cache_dir)
    assert voice["bytes"] == wav_bytes(cache_dir) and voice["bytes"] <= CAP_MB * 2**20
    assert voice["evicted"] > 0 and voice["files"] == wav_count(cache_dir)


async def test_low_free_space_refuses_voice_but_tickets_are_still_issued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with live_hall(tmp_path) as live:
        await low_space(live, monkeypatch)


async def low_space(live: LiveHall, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = live.svc
    await svc.sign_in(1, "0231")
    first = (await svc.issue("A")).ticket
    real = shutil.disk_usage

    def low(path: str | Path) -> Any:
        u = real(path)
        total = 10 * 2**30  # a 10 GiB filesystem with 300 MiB free: under 5 % (512 MiB)
        return type(u)(total, total - 300 * 2**20, 300 * 2**20)

    monkeypatch.setattr(shutil, "disk_usage", low)
    # Called with the disk already short: the call's own pre-render is refused too, not raced.
    await svc.call_next(1)
    r = await live.client.get(f"/api/v1/voice/{first.id}.wav", headers=live.auth("display"))
    assert r.status_code == 503, r.headers
    assert r.json()["code"] == "voice_unavailable"
    r = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert r.status_code == 201, r.text
    health = (await live.client.get("/api/v1/health", headers=live.auth("admin"))).json()
    # Refused at the screen's request (and at the call's own pre-render, whichever ran first): no clip written.
    assert health["voice"]["refused_low_disk"] >= 1 and health["voice"]["files"] == 0
    monkeypatch.setattr(shutil, "disk_usage", real)
    r = await live.client.get(f"/api/v1/voice/{first.id}.wav", headers=live.auth("display"))
    assert r.status_code == 200, r.text
