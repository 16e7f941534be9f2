"""The announcement audio is rendered only for calls that happened, from the call's own announcement text."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hallctl.http.voice import VoiceCache
from tests.core.core_helpers import LiveHall


async def test_voice_of_a_called_ticket_is_its_announcement(live: LiveHall) -> None:
    svc = live.svc
    t = (await svc.issue("A")).ticket
    await svc.sign_in(1, "0231")
    await svc.call_next(1)
    r = await live.client.get(f"/api/v1/voice/{t.id}.wav", params={"token": live.tokens["display"]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav" and r.content[:4] == b"RIFF"
    calls = (await live.client.get("/api/v1/calls", headers=live.auth("display"))).json()
    assert [(c["ticket_id"], c["announcement"]) for c in calls] == [(t.id, "请A001号到1号窗口办理")]


async def test_voice_refuses_a_ticket_that_was_never_called(live: LiveHall) -> None:
    t = (await live.svc.issue("A")).ticket
    r = await live.client.get(f"/api/v1/voice/{t.id}.wav", headers=live.auth("display"))
    assert r.status_code == 404 and r.json()["code"] == "not_called", r.text
    r = await live.client.get("/api/v1/voice/20261123-Z999.wav", headers=live.auth("display"))
    assert r.status_code == 404


async def test_voice_no_longer_renders_arbitrary_number_and_window_pairs(live: LiveHall) -> None:
    r = await live.client.get(
        "/api/v1/voice/call.wav", params={"number": "A123", "window": 7}, headers=live.auth("display")
    )
    assert r.status_code == 404, r.text


async def test_voice_cache_keeps_at_most_its_limit_of_clips(tmp_path: Path) -> None:
    """Distinct announcements never pile up: the oldest clips go once the cache holds its limit."""
    cache = VoiceCache(tmp_path / "voice", max_files=2)
    try:
        paths = [await cache.render(f"请A00{n}号到1号窗口办理") for n in range(1, 5)]
        left = sorted((tmp_path / "voice").glob("*.wav"))
        assert len(left) == 2 and paths[-1] in left
        assert await cache.render("请A004号到1号窗口办理") == paths[-1]  # cached: same clip, not rendered again
    finally:
        await cache.close()


async def test_voice_cache_counts_every_clip_when_renders_overlap(tmp_path: Path) -> None:
    """Clips rendered at once (pre-renders and screens' requests) are all counted: the disk stays within the cap."""
    cache = VoiceCache(tmp_path / "voice", max_bytes=2**20)
    try:
        texts = [f"请A{n:03d}号到{n % 9 + 1}号窗口办理" for n in range(1, 13)]
        paths = await asyncio.gather(*(cache.render(t) for t in texts))
        on_disk = {p.name: p.stat().st_size for p in (tmp_path / "voice").glob("*.wav")}
        assert 0 < sum(on_disk.values()) <= 2**20
        assert cache.health()["bytes"] == sum(on_disk.values()) and cache.health()["files"] == len(on_disk)
        assert set(on_disk) <= {p.name for p in paths} and cache.evicted == len(texts) - len(on_disk)
    finally:
        await cache.close()
