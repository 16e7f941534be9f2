"""Issue 12 goal 4: the start-up check's work does not grow with the history behind its window.

Measured in SQLite virtual-machine steps (a progress handler), which are deterministic: no time
is asserted. The check of issued tickets missing from the tickets table read its rows through the
(kind, window, seq) index, i.e. every 'issued' row of the whole history, ≈0.02 s per year of a
busy hall before the first answer; it reads the newest RECENT_LOG_ROWS rows by seq, as meant.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hallctl.store import integrity
from tests.hostile.test_integrity_bounded import append_issues
from tests.hostile.test_integrity_check import issued

WINDOW = 5


def add_issued_history(db: Path, n: int) -> None:
    """``n`` old 'issued' log rows (their tickets long purged or never kept: outside the window)."""
    conn = sqlite3.connect(db)
    try:
        conn.executemany(
            "INSERT INTO event_log (at, kind, ticket_id, window, data) VALUES (?,?,?,?,?)",
            [("2025-01-02T01:00:00+00:00", "issued", f"20250102-A{i:05d}", None, "{}") for i in range(n)],
        )
        conn.commit()
    finally:
        conn.close()


def check_steps(db: Path) -> tuple[list[str], int]:
    """The start-up check's findings and its work, in thousands of SQLite VM steps."""
    conn = sqlite3.connect(db)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    try:
        conn.set_progress_handler(count, 1000)
        return integrity.check(conn, {}), steps
    finally:
        conn.close()


async def test_the_check_of_recent_issues_reads_the_window_not_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "RECENT_LOG_ROWS", WINDOW)
    work = []
    for n, sub in ((2_000, "short"), (40_000, "long")):
        (tmp_path / sub).mkdir()
        db = await issued(tmp_path / sub, 0)
        add_issued_history(db, n)
        await append_issues(db, 2 * WINDOW)  # the recent window: sound
        found, steps = check_steps(db)
        assert found == []
        work.append(steps)
    short, long = work
    # Twenty times the history behind the window: the same work, give or take the index depths.
    assert long <= short * 1.5 + 5, f"{short}k steps with 2,000 old rows, {long}k with 40,000"
