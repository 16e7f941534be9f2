"""Issue 12 goal 4: the start-up check is bounded, and still catches what a crash damages.

The start-up check no longer reads the whole file (a year of history made it take over a
second): the small tables whole, the event log's newest ``RECENT_LOG_ROWS`` rows, the
high-water marks. These tests put the hostile damage (a deleted log row, a deleted issued
ticket) *behind* a history longer than that window and check it is still found, and that
the rest of the file is checked after start (``Store.verify_full``), so a corrupt page in
the history is reported as damage in health.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hallctl.bus import Bus
from hallctl.service import HallService
from hallctl.store import Store, StoreRefused, integrity
from tests.core.core_helpers import FakeClock, make_config
from tests.hostile.test_integrity_check import issued, sql, verify

OLD_ROWS = 300


def add_history(db: Path, n: int) -> None:
    """``n`` old event-log rows before the recent ones (a long history, scaled down)."""
    conn = sqlite3.connect(db)
    try:
        conn.executemany(
            "INSERT INTO event_log (at, kind, ticket_id, window, data) VALUES (?,?,?,?,?)",
            [("2025-01-02T01:00:00+00:00", "paused", None, 1, "{}") for _ in range(n)],
        )
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("damage", "finding"),
    [
        ("DELETE FROM event_log WHERE seq = (SELECT MAX(seq) - 2 FROM event_log)", "event log has gaps"),
        ("DELETE FROM tickets WHERE number = 'A003'", "issued tickets missing"),
        ("DELETE FROM tickets WHERE number = 'A005'", "high-water mark above the database"),
    ],
)
async def test_recent_damage_behind_a_long_history_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, finding: str
) -> None:
    monkeypatch.setattr(integrity, "RECENT_LOG_ROWS", 50)  # the window, scaled like the history
    db = await issued(tmp_path, 0)  # the schema, then a history longer than the window
    add_history(db, OLD_ROWS)
    await append_issues(db, 5)
    assert await verify(db) == []
    sql(db, damage)
    with pytest.raises(StoreRefused, match=finding):
        await verify(db)


async def append_issues(db: Path, n: int) -> None:
    store = Store(str(db))
    await store.open()
    svc = HallService(make_config(store={"path": str(db)}), store, Bus(), FakeClock())
    await svc.start()
    for _ in range(n):
        await svc.issue("A")
    await svc.stop()
    await svc.bus.close()
    await store.close()


def corrupt_root_page(db: Path, table: str) -> None:
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * 64)


async def test_a_corrupt_history_page_is_found_after_start_and_reported(tmp_path: Path) -> None:
    db = await issued(tmp_path, 5)
    corrupt_root_page(db, "evaluations")  # a history table: not read before serving
    store = Store(str(db))
    await store.open()
    try:
        await store.verify("refuse")  # bounded: the history tables are not walked before serving
        found = await store.verify_full()
        assert found, "a corrupt page in a history table went unnoticed"
        health = store.health()
        assert health.damaged and not health.ok, health
    finally:
        await store.close()
