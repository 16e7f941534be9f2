"""Item 18: personal data on disk. Files 0600 whatever the umask; after a purge no name or ID
number is left in the bytes of ``hallctl.db``, ``-wal`` or ``-shm`` while the store stays open."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers.sim.idcard import SAMPLE_CARDS
from hallctl.bus import Bus
from hallctl.engine import Holder
from hallctl.service import HallService
from hallctl.store import Store
from tests.core.core_helpers import SHANGHAI, Daemon, FakeClock, make_config
from tests.hostile.integrity_helpers import mode


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def holder(key: str) -> Holder:
    card = SAMPLE_CARDS[key]
    return Holder(name=card.name, id_number=card.id_number, address=card.address)


def files(db: Path) -> list[Path]:
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]


def raw(path: Path) -> bytes:
    """The file's bytes, read by another process: closing a descriptor of the database file in
    this process would drop this process's SQLite (POSIX) locks on it, and the CLI would then
    believe it is the last connection and remove the -wal."""
    return subprocess.run(["cat", str(path)], capture_output=True, check=True, timeout=10).stdout


def leaked(db: Path, h: Holder) -> list[str]:
    secrets = [h.name, h.id_number, h.address or ""]
    return [f"{p.name}: {s}" for p in files(db) for s in secrets if s and s.encode() in raw(p)]


async def test_purge_leaves_no_name_or_id_number_in_db_wal_shm_and_files_are_0600(
    tmp_path: Path, loose_umask: None
) -> None:
    db = tmp_path / "state" / "hallctl.db"
    cfg = make_config(store={"path": str(db)}, privacy={"retention_days": 30}, calendar={"statutory": False})
    # Older than the retention on the real clock `hallctl purge` uses, and inside opening hours
    # (a Wednesday, 10:00 in the hall), whatever the hour the test runs at.
    then = (datetime.now(UTC) - timedelta(days=60)).astimezone(SHANGHAI).replace(hour=10, minute=0)
    clock = FakeClock(then - timedelta(days=(then.weekday() - 2) % 7))
    store = Store(str(db))
    await store.open()
    svc = HallService(cfg, store, Bus(), clock)
    await svc.start()
    try:
        young, hui = holder("young"), holder("hui")
        for _ in range(3):
            await svc.issue("A", holder=young)
        assert leaked(db, young), "the holder is not on disk at all: the scan below could not fail"
        assert {p.name: mode(p) for p in files(db)} == {p.name: 0o600 for p in files(db)}
        assert len(files(db)) == 3  # db, -wal, -shm all exist and all are 0600

        # `hallctl purge` from another process while the store is open (real clock: 60 days ago).
        d = Daemon(tmp_path / "cli")
        d.data["store"]["path"] = str(db)
        d.data["privacy"] = {"retention_days": 30}
        res = d.cli("purge")
        assert res.returncode == 0, res.stderr
        assert "of 3 tickets" in res.stdout, res.stdout
        assert leaked(db, young) == []

        # The daemon's own retention purge.
        await svc.issue("B", holder=hui)
        assert leaked(db, hui)
        clock.advance(days=31)
        assert (await svc.purge()).personal == 1
        assert leaked(db, hui) == []

        # A backup is 0600 whatever the umask.
        res = d.cli("backup", str(tmp_path / "backup.db"))
        assert res.returncode == 0, res.stderr
        assert mode(tmp_path / "backup.db") == 0o600
    finally:
        await svc.stop()
        await svc.bus.close()
        await store.close()

    # An existing database made 0644 elsewhere is tightened when opened, with the lock and mark files.
    os.chmod(db, 0o644)
    again = Store(str(db))
    await again.open()
    await again.close()
    assert mode(db) == 0o600
    for extra in (db.with_name(db.name + ".hwm"),):
        assert mode(extra) == 0o600
