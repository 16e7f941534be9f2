"""Item 11: kill -9, then 64 flipped bytes in the WAL. Never health ``ok`` with tickets missing.

SQLite's WAL recovery stops at the first frame whose checksum fails and drops every frame
after it, silently: the acknowledged tickets in those frames are gone from the database.
The daemon must notice (the number high-water file beside the database is above the
tickets table) and refuse, or, with ``[store] on_damage = "continue"``, continue after the
high-water mark with an alert, so no number is handed out twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.core.core_helpers import Daemon
from tests.hostile.integrity_helpers import bearer, issue, rows, run_to_exit, started

ACKED = 30


def flip_wal(db: Path) -> None:
    """XOR 64 bytes at fixed positions from 40 % of the WAL on (frame data and headers alike)."""
    wal = db.with_name(db.name + "-wal")
    data = bytearray(wal.read_bytes())
    assert len(data) > 64 * 64, f"WAL too small to damage: {len(data)} bytes"
    start = len(data) * 2 // 5
    for i in range(64):
        data[start + i * 61] ^= 0xA5
    wal.write_bytes(bytes(data))


async def acked_then_damaged(tmp_path: Path, **store: Any) -> tuple[Daemon, dict[str, str], list[dict[str, Any]]]:
    d, tokens = await started(tmp_path / "hall", store)
    acked = issue(d, tokens["kiosk"], ACKED)
    d.kill9()
    flip_wal(Path(d.data["store"]["path"]))
    return d, tokens, acked


async def test_damaged_wal_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    d, _, _ = await acked_then_damaged(tmp_path)
    result = run_to_exit(d)
    assert result.returncode == 2, f"the daemon started on a damaged database: {result.stderr[-2000:]}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and "on_damage" in lines[0], result.stderr


async def test_damaged_wal_with_continue_reuses_no_number_and_alerts(tmp_path: Path) -> None:
    d, tokens, acked = await acked_then_damaged(tmp_path, on_damage="continue")
    d.start()
    try:
        db = Path(d.data["store"]["path"])
        present = {r[0] for r in rows(db, "SELECT number FROM tickets")}
        async with httpx.AsyncClient(base_url=d.url, timeout=10) as c:
            health = (await c.get("/api/v1/health", headers=bearer(tokens["admin"]))).json()
            if len(present) < ACKED:
                assert health["status"] != "ok", f"health ok with {ACKED - len(present)} tickets missing"
                assert health["store"]["damaged"] is True and health["store"]["damage"], health["store"]
                alerts = (await c.get("/api/v1/alerts", headers=bearer(tokens["admin"]))).json()
                assert any(a["alert"] == "store_damaged" for a in alerts), alerts
            # Whatever was lost, the next numbers come after every acknowledged one.
            fresh = issue(d, tokens["kiosk"], 5)
        numbers = {t["number"] for t in acked}
        reused = numbers & {t["number"] for t in fresh}
        assert not reused, f"numbers handed out twice: {sorted(reused)}"
        assert [t["number"] for t in fresh] == [f"A{i:03d}" for i in range(ACKED + 1, ACKED + 6)]
        assert len(present) < ACKED, "the flipped bytes lost nothing: the test did not damage the WAL"
    finally:
        d.stop()
