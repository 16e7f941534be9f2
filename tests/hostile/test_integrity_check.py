"""Item 11: the start-up checks themselves, on a database made inconsistent by hand."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from hallctl import engine
from hallctl.bus import Bus
from hallctl.engine import HallQueue
from hallctl.service import HallService
from hallctl.store import Store, StoreRefused
from tests.core.core_helpers import FakeClock, make_config


def q_counter(q: HallQueue, day: date) -> int:
    return q.counters.get((day, "A"), 0)


async def issued(tmp_path: Path, n: int) -> Path:
    db = tmp_path / "hallctl.db"
    store = Store(str(db))
    await store.open()
    svc = HallService(make_config(store={"path": str(db)}), store, Bus(), FakeClock())
    await svc.start()
    for _ in range(n):
        await svc.issue("A")
    await svc.stop()
    await svc.bus.close()
    await store.close()
    return db


def sql(db: Path, statement: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


async def verify(db: Path, on_damage: str = "refuse") -> list[str]:
    store = Store(str(db))
    await store.open()
    try:
        return await store.verify(on_damage)
    finally:
        await store.close()


async def test_sound_database_passes(tmp_path: Path) -> None:
    assert await verify(await issued(tmp_path, 5)) == []


@pytest.mark.parametrize(
    ("damage", "finding"),
    [
        ("DELETE FROM event_log WHERE seq = 3", "event log has gaps"),
        ("DELETE FROM tickets WHERE number = 'A002'", "issued tickets missing"),
        ("DELETE FROM tickets WHERE number = 'A005'", "high-water mark above the database"),
    ],
)
async def test_each_inconsistency_refuses_and_continue_numbers_after_the_mark(
    tmp_path: Path, damage: str, finding: str
) -> None:
    db = await issued(tmp_path, 5)
    sql(db, damage)
    with pytest.raises(StoreRefused, match=finding) as info:
        await verify(db)
    assert info.value.code == "store_damaged"
    found = await verify(db, "continue")
    assert any(finding in f for f in found), found

    store = Store(str(db))
    await store.open()
    try:
        cfg = make_config(store={"path": str(db)})
        day = engine.business_day(FakeClock()(), cfg)
        assert q_counter(await store.load_queue(day), day) == 5  # A006 next, never a second A005
    finally:
        await store.close()
