"""Idempotency-Key lookups answered from the in-memory filter of stored keys, never wrongly.

A fresh key is answered "not stored" without a database read; a stored key (and the rare
fresh key the filter cannot rule out) is read from the database, so a retry gets its first
ticket back: after a restart, across the filter being rebuilt larger, and for keys queued
while the filter was being built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from hallctl.store import Store
from tests.core.core_helpers import Daemon
from tests.core.test_core_group_commit import _decision


async def _open(tmp_path: Path) -> Store:
    store = Store(str(tmp_path / "hall.db"))
    await store.open()
    return store


async def _built(store: Store) -> None:
    """Start the filter as the first lookup does, and wait for it (bounded)."""
    assert await store.idempotent_response("first-lookup") is None
    loading = store.key_filter_loading
    assert loading is not None
    async with asyncio.timeout(10):
        await loading
    assert store.key_filter is not None


async def test_keys_queued_while_the_filter_is_built_are_not_missed(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        d1, k1 = _decision(1, "kiosk:before")
        await store.apply(d1, idempotency=k1)
        # Hold the writer: the filter's read of the stored keys queues behind it, and so does a ticket after it.
        release, holding = threading.Event(), threading.Event()

        def hold(_: object) -> None:
            holding.set()
            release.wait(10)

        blocker = asyncio.ensure_future(store.write(hold))
        assert await asyncio.to_thread(holding.wait, 10)
        loading = asyncio.ensure_future(store.load_key_filter())
        await asyncio.sleep(0)  # one pass of the loop: the load's first step queues its read (no timing involved)
        d2, k2 = _decision(2, "kiosk:during")
        during = asyncio.ensure_future(store.apply(d2, idempotency=k2))
        release.set()
        async with asyncio.timeout(10):
            await asyncio.gather(blocker, loading, during)
        assert store.key_filter is not None
        first = await store.idempotent_response("kiosk:before")
        second = await store.idempotent_response("kiosk:during")
        assert first is not None and first[1] == k1[2]
        assert second is not None and second[1] == k2[2]
        skipped = store.key_reads_skipped
        assert await store.idempotent_response("kiosk:fresh") is None
        assert store.key_reads_skipped == skipped + 1  # answered without a read
    finally:
        await store.close()


async def test_a_full_filter_is_rebuilt_larger_and_stored_keys_still_replay(tmp_path: Path) -> None:
    store = await _open(tmp_path)
    try:
        store.key_filter_min_capacity = 4
        await _built(store)
        f = store.key_filter
        assert f is not None and f.capacity == 4
        keys: list[tuple[str, int, str]] = []
        for i in range(1, 6):
            d, key = _decision(i, f"kiosk:{i}")
            await store.apply(d, idempotency=key)
            keys.append(key)
        rebuilding = store.key_filter_loading  # the fifth key overfilled it: rebuilt, larger, in the background
        assert rebuilding is not None and store.key_filter is f
        for i in range(6, 30):  # while it is rebuilt: into the old filter and the backlog
            d, key = _decision(i, f"kiosk:{i}")
            await store.apply(d, idempotency=key)
            keys.append(key)
        async with asyncio.timeout(10):
            await rebuilding
        assert store.key_filter is not f and store.key_filter is not None and store.key_filter.capacity >= 8
        for name, status, body in keys:
            assert await store.idempotent_response(name) == (status, body)
    finally:
        await store.close()


async def test_a_key_the_filter_cannot_rule_out_is_read_from_the_database(tmp_path: Path) -> None:
    """A "maybe" of the filter is a database read, which finds nothing for a fresh key: a new ticket, no replay."""
    store = await _open(tmp_path)
    try:
        await _built(store)
        f = store.key_filter
        assert f is not None
        reads = 0
        real_read = store.read

        async def counting_read(fn: Callable[..., object]) -> object:
            nonlocal reads
            reads += 1
            return await real_read(fn)

        store.read = counting_read  # type: ignore[method-assign,assignment]
        assert await store.idempotent_response("kiosk:fresh") is None and reads == 0
        f.may_contain = lambda key: True  # type: ignore[method-assign]  # every key a false positive
        assert await store.idempotent_response("kiosk:fresh") is None and reads == 1
    finally:
        await store.close()


async def test_replays_after_a_restart_return_the_first_tickets(tmp_path: Path) -> None:
    """Keys stored by one run of the daemon replay in the next (its filter is built from the database)."""
    d = Daemon(tmp_path / "d")
    tokens = await d.create_tokens({"kiosk": ("kiosk", ())})
    kiosk = {"Authorization": f"Bearer {tokens['kiosk']}"}
    first: dict[str, str] = {}
    d.start()
    try:
        async with httpx.AsyncClient(base_url=d.url, timeout=30) as c:
            for i in range(10):
                key = f"k1-{i}"
                r = await c.post("/api/v1/tickets", json={"category": "A"}, headers={**kiosk, "Idempotency-Key": key})
                assert r.status_code == 201, r.text
                first[key] = r.json()["id"]
        d.stop()
        d.start()
        async with httpx.AsyncClient(base_url=d.url, timeout=30) as c:
            for key, tid in first.items():
                r = await c.post("/api/v1/tickets", json={"category": "A"}, headers={**kiosk, "Idempotency-Key": key})
                assert r.status_code == 201 and r.headers.get("idempotent-replayed") == "true", key
                assert r.json()["id"] == tid
            fresh = await c.post(
                "/api/v1/tickets", json={"category": "A"}, headers={**kiosk, "Idempotency-Key": "k1-x"}
            )
            assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
            assert fresh.json()["id"] not in first.values()
    finally:
        d.stop()
