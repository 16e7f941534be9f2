"""Item 10: two daemons on one database. The second exits 2 naming the lock and its holder."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.hostile.integrity_helpers import bearer, daemon, issue, mode, rows, run_to_exit, started


async def test_second_daemon_on_one_database_exits_2_and_the_first_keeps_serving(tmp_path: Path) -> None:
    first, tokens = await started(tmp_path / "first")
    try:
        assert first.proc is not None
        db = Path(first.data["store"]["path"])
        second = daemon(tmp_path / "second", {"path": str(db)})
        result = run_to_exit(second)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr  # one line, no traceback, no MQTT connect
        assert f"{db}.lock" in lines[0] and f"PID {first.proc.pid}" in lines[0], lines[0]

        # The first one still serves, and every acknowledgement is its own row.
        acked = issue(first, tokens["kiosk"], 10)
        assert [t["number"] for t in acked] == [f"A{i:03d}" for i in range(1, 11)]
        assert rows(db, "SELECT COUNT(*) FROM tickets")[0][0] == 10
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as c:
            assert (await c.get("/api/v1/health")).status_code == 200
            resp = await c.get("/api/v1/tickets", params={"category": "A"}, headers=bearer(tokens["admin"]))
            listed = resp.json()
            assert sorted(t["number"] for t in listed) == [t["number"] for t in acked]

        # Read-only CLI commands and the online backup work while the daemon holds the lock.
        for args in (("token", "list"), ("stats",)):
            res = first.cli(*args)
            assert res.returncode == 0, (args, res.stderr)
        backup = tmp_path / "backup.db"
        res = first.cli("backup", str(backup))
        assert res.returncode == 0, res.stderr
        assert rows(backup, "SELECT COUNT(*) FROM tickets")[0][0] == 10
        assert mode(backup) == 0o600
    finally:
        first.stop()
