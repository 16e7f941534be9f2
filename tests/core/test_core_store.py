"""Store and service: one transaction per decision, faults change nothing, pragmas, retention, backup."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hallctl import cli
from hallctl import events as ev
from hallctl.bus import Bus
from hallctl.engine import Holder
from hallctl.errors import StoreUnavailable
from hallctl.reports.stats import day_stats
from hallctl.service import HallService
from hallctl.store import Store
from tests.core.core_helpers import FakeClock, LiveHall, make_config, to_toml

HOLDER = Holder(name="张三丰", id_number="110101198001011234")


class Rig:
    def __init__(self, svc: HallService, db: str, events: list[ev.Event]) -> None:
        self.svc, self.db, self.events = svc, db, events

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(query, args).fetchall()
        finally:
            conn.close()

    def exec(self, script: str) -> None:
        conn = sqlite3.connect(self.db)
        try:
            conn.executescript(script)
        finally:
            conn.close()


RigFactory = Callable[..., Any]


@pytest.fixture
async def rig_factory(tmp_path: Path, clock: FakeClock) -> AsyncIterator[RigFactory]:
    made: list[HallService] = []

    async def make(db: str | None = None, **over: Any) -> Rig:
        path = db or str(tmp_path / "hall.db")
        cfg = make_config(store={"path": path}, **over)
        store = Store(path, busy_timeout_ms=cfg.store.busy_timeout_ms, max_size_mb=cfg.store.max_size_mb)
        await store.open()
        bus = Bus()
        seen: list[ev.Event] = []
        bus.subscribe("test", seen.append)
        svc = HallService(cfg, store, bus, clock)
        await svc.start()
        made.append(svc)
        return Rig(svc, path, seen)

    yield make
    for svc in made:
        await svc.stop()
        await svc.bus.close()
        await svc._store.close()


async def _close(r: Rig) -> None:
    await r.svc.stop()
    await r.svc.bus.close()
    await r.svc._store.close()


async def test_failed_write_changes_nothing_and_numbering_has_no_gap(rig_factory: RigFactory) -> None:
    """a fault while writing the event log rolls back the ticket too; memory unchanged; next number follows."""
    r = await rig_factory()
    first = (await r.svc.issue("A")).ticket
    r.exec(
        "CREATE TRIGGER boom BEFORE INSERT ON event_log WHEN NEW.kind = 'issued'"
        " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
    )
    before_tickets, before_counters = dict(r.svc._q.tickets), dict(r.svc._q.counters)
    await r.svc.bus.drain()
    n_events = len(r.events)
    with pytest.raises(StoreUnavailable) as exc:
        await r.svc.issue("A")
    assert exc.value.http_status == 503
    assert r.svc._q.tickets == before_tickets and r.svc._q.counters == before_counters
    assert r.sql("SELECT number FROM tickets") == [("A001",)]
    assert r.sql("SELECT COUNT(*) FROM event_log WHERE kind = 'issued'") == [(1,)]
    await r.svc.bus.drain()
    assert not any(isinstance(e, ev.TicketIssued) for e in r.events[n_events:]), "unsaved ticket announced"
    r.exec("DROP TRIGGER boom;")
    second = (await r.svc.issue("A")).ticket
    assert (first.number, second.number) == ("A001", "A002")
    rows = r.sql(
        "SELECT t.number, COUNT(e.seq) FROM tickets t JOIN event_log e ON e.ticket_id = t.id"
        " GROUP BY t.id ORDER BY t.number"
    )
    assert rows == [("A001", 1), ("A002", 1)]


async def test_failed_transfer_leaves_both_tickets_as_they_were(rig_factory: RigFactory) -> None:
    """a multi-row decision (transfer) that fails mid-write leaves no follow-up and the original called."""
    r = await rig_factory()
    t = (await r.svc.issue("A")).ticket
    await r.svc.call_next(1)
    r.exec(
        "CREATE TRIGGER boom BEFORE INSERT ON event_log WHEN NEW.kind = 'transferred'"
        " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
    )
    with pytest.raises(StoreUnavailable):
        await r.svc.transfer(1, "B", None)
    assert r.sql("SELECT number, state FROM tickets") == [("A001", "called")]
    assert r.svc._q.tickets[t.id].state == "called" and r.svc._q.window(1).current == t.id
    r.exec("DROP TRIGGER boom;")
    new = await r.svc.transfer(1, "B", None)
    assert new.number == "B001"


async def test_event_log_refuses_update(rig_factory: RigFactory) -> None:
    """the event log is append-only: an UPDATE is aborted by the schema."""
    r = await rig_factory()
    await r.svc.issue("A")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        r.exec("UPDATE event_log SET kind = 'forged';")
    assert r.sql("SELECT kind FROM event_log") == [("issued",)]


async def test_migrations_wal_and_synchronous_full(rig_factory: RigFactory) -> None:
    """migrations set user_version; the file is in WAL mode; the writer commits with synchronous=FULL."""
    from importlib import resources

    r = await rig_factory()
    newest = max(
        int(f.name.split("_")[0])
        for f in resources.files("hallctl.store.migrations").iterdir()
        if f.name.endswith(".sql")
    )
    assert r.sql("PRAGMA user_version") == [(newest,)]
    assert r.sql("PRAGMA journal_mode") == [("wal",)]
    sync = await r.svc._store.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert sync == 2  # FULL
    # Re-opening does not re-run migrations (they would fail on existing tables).
    store = Store(r.db)
    await store.open()
    await store.close()


async def test_state_survives_restart_and_numbering_continues(rig_factory: RigFactory, tmp_path: Path) -> None:
    """a new service on the same database sees every ticket and window, and continues numbering."""
    r = await rig_factory()
    for _ in range(3):
        await r.svc.issue("A")
    called = await r.svc.call_next(1)
    await _close(r)
    r2 = await rig_factory(db=r.db)
    assert called is not None and r2.svc._q.window(1).current == called.id
    assert (await r2.svc.issue("A")).ticket.number == "A004"


async def test_rollover_keeps_history(rig_factory: RigFactory, clock: FakeClock) -> None:
    """a new business day cancels leftovers and restarts numbering; yesterday stays in the store."""
    r = await rig_factory()
    await r.svc.issue("A")
    await r.svc.issue("A")
    await r.svc.call_next(1)
    await r.svc.finish(1)
    clock.advance(days=1)
    assert (await r.svc.issue("A")).ticket.number == "A001"
    rows = r.sql("SELECT day, number, state, end_reason FROM tickets ORDER BY day, number")
    assert rows == [
        ("2026-11-23", "A001", "done", None),
        ("2026-11-23", "A002", "cancelled", "day_closed"),
        ("2026-11-24", "A001", "waiting", None),
    ]
    yesterday = await day_stats(r.svc._store, r.svc.cfg, clock.now.date() - timedelta(days=1))
    assert yesterday["total"]["issued"] == 2


async def test_retention_purge_removes_old_holders_keeps_stats(rig_factory: RigFactory, clock: FakeClock) -> None:
    """the purge deletes holder data older than retention_days and keeps tickets and statistics."""
    r = await rig_factory(privacy={"retention_days": 30})
    old = (await r.svc.issue("A", holder=HOLDER)).ticket
    await r.svc.call_next(1)
    await r.svc.finish(1)
    day = r.svc._q.day
    before = await day_stats(r.svc._store, r.svc.cfg, day)
    clock.advance(days=29)
    recent = (await r.svc.issue("A", holder=HOLDER)).ticket
    assert (await r.svc.purge()).personal == 0  # nothing is 30 days old yet
    clock.advance(days=2)
    assert (await r.svc.purge()).personal == 1
    assert r.sql("SELECT ticket_id FROM holders") == [(recent.id,)]
    assert r.sql("SELECT holder_masked, id_hash FROM tickets WHERE id = ?", old.id) == [(None, None)]
    assert r.sql("SELECT holder_masked FROM tickets WHERE id = ?", recent.id) == [("张*丰",)]
    after = await day_stats(r.svc._store, r.svc.cfg, day)
    assert after["total"] == before["total"] and after["total"]["done"] == 1


async def test_backup_command_makes_readable_copy(rig_factory: RigFactory, tmp_path: Path) -> None:
    """`hallctl backup FILE` writes a consistent, readable copy of the database."""
    r = await rig_factory()
    for _ in range(5):
        await r.svc.issue("B")
    cfg_file = tmp_path / "hall.toml"
    cfg_file.write_text(
        to_toml(
            {"hall": {"id": "t", "name": "t"}, "store": {"path": r.db}, "category": [{"prefix": "B", "name": "b"}]}
        ),
        encoding="utf-8",
    )
    target = tmp_path / "copy.db"
    assert cli.main(["-c", str(cfg_file), "backup", str(target)]) == 0
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [n for (n,) in conn.execute("SELECT number FROM tickets ORDER BY seq")] == [
            f"B00{i}" for i in range(1, 6)
        ]
        assert conn.execute("SELECT COUNT(*) FROM event_log").fetchone() == (5,)
    finally:
        conn.close()


# ---- faults through the HTTP API ------------------------------------------------------------------


async def test_full_database_gives_503_and_nothing_half_written(hall_factory: Any, clock: FakeClock) -> None:
    """with the database full (max_size_mb), issuing is a 503 problem; after the fault clears, no gap."""
    # An empty database is ~50 pages since the admin, supervision and report migrations (0010-0012);
    # room above that for a few hundred tickets.
    live: LiveHall = await hall_factory(clock=clock, store={"max_size_mb": 0.3})
    numbers: list[str] = []
    failure = None
    for _ in range(3000):
        resp = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
        if resp.status_code != 201:
            failure = resp
            break
        numbers.append(resp.json()["number"])
    assert failure is not None, "the database never filled up"
    assert failure.status_code == 503
    assert failure.headers["content-type"].startswith("application/problem+json")
    assert failure.json()["code"] == "store_full"
    store_rows = await live.hall.store.read(
        lambda c: c.execute(
            "SELECT t.number, (SELECT COUNT(*) FROM event_log e WHERE e.ticket_id = t.id) FROM tickets t ORDER BY t.seq"
        ).fetchall()
    )
    assert [tuple(row) for row in store_rows] == [(n, 1) for n in numbers]
    assert sorted(t.number for t in live.svc._q.tickets.values()) == numbers
    # The daemon keeps serving reads.
    assert (await live.client.get("/api/v1/health")).status_code == 200
    assert (await live.client.get("/api/v1/tickets", headers=live.auth("display"))).status_code == 200
    await live.hall.store.write(lambda c: c.execute("PRAGMA max_page_count = 1000000").fetchone())
    resp = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert resp.status_code == 201
    assert resp.json()["number"] == f"A{len(numbers) + 1:03d}"


async def test_locked_database_gives_503_then_recovers(hall_factory: Any, clock: FakeClock) -> None:
    """another process holding BEGIN EXCLUSIVE → 503 store_locked; after release the daemon issues again."""
    live: LiveHall = await hall_factory(clock=clock, store={"busy_timeout_ms": 100})
    ok = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert ok.status_code == 201
    blocker = sqlite3.connect(live.hall.cfg.store.path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        resp = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
        assert resp.status_code == 503
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "store_locked"
        health = await live.client.get("/api/v1/health", headers=live.auth("admin"))
        assert health.status_code == 200 and health.json()["store"]["write_errors"] >= 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    resp = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert resp.status_code == 201 and resp.json()["number"] == "A002"
    rows = await live.hall.store.read(lambda c: c.execute("SELECT number FROM tickets ORDER BY seq").fetchall())
    assert [r[0] for r in rows] == ["A001", "A002"]


def test_event_payloads_in_log_are_json() -> None:
    """event-log rows carry JSON data with the ticket number (checked on the engine decision)."""
    from tests.core.core_harness import EngineHall
    from tests.core.core_helpers import T0

    h = EngineHall(make_config(), T0)
    d = h.issue_d("A")
    assert json.loads(json.dumps(d.log[0].data)) == {
        "number": "A001",
        "category": "A",
        "priority": "normal",
        "channel": "api",
    }


async def test_swipe_whose_ticket_cannot_be_saved_tells_the_kiosk(rig_factory: RigFactory) -> None:
    """a card swipe at a multi-category kiosk whose issue fails in the store puts a notice on that kiosk."""
    from hallctl.engine import Holder

    r = await rig_factory(kiosk=[{"id": "k1", "categories": ["A", "B"]}])
    await r.svc.card_read("k1", Holder(name="张三丰", id_number="11010519491231002X"))
    await r.svc.bus.drain()
    offer = next(e for e in r.events if isinstance(e, ev.CardRead)).offer
    r.exec(
        "CREATE TRIGGER boom BEFORE INSERT ON event_log WHEN NEW.kind = 'issued'"
        " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
    )
    with pytest.raises(StoreUnavailable):
        await r.svc.issue_from_offer(offer, "A")
    await r.svc.bus.drain()
    notices = [e for e in r.events if isinstance(e, ev.KioskNotice)]
    assert [(n.kiosk, n.code) for n in notices] == [("k1", "store_error")]
    assert "张三丰" not in notices[0].message
    r.exec("DROP TRIGGER boom;")
    assert (await r.svc.issue_from_offer(offer, "A")).ticket.number == "A001"  # the offer survives the fault
