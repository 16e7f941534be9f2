"""The central's PostgreSQL store against a real PostgreSQL: partitions, idempotence, gaps, report rows."""

from __future__ import annotations

from datetime import date

from hallctl.central.store import CentralStore, Gap
from hallctl.citylog import EventLogRow


def row(seq: int, at: str = "2026-07-15T09:00:00+08:00", kind: str = "issued", **data: object) -> EventLogRow:
    return EventLogRow(seq, at, kind, f"20260715-A{seq:03d}", None, dict(data) or {"number": f"A{seq:03d}"})


async def test_rows_are_stored_once_per_hall_and_seq_in_daily_partitions(pg_dsn: str) -> None:
    s = CentralStore(pg_dsn)
    await s.connect()
    try:
        await s.migrate()
        await s.migrate()  # a second ingestor starting later: nothing happens
        rows = [("xc", row(1)), ("xc", row(2, "2026-07-16T00:10:00+08:00")), ("dc", row(1))]
        assert await s.insert(rows) == 3
        # Repeats (a bridge re-sending, a replay of stored rows) are skipped, whatever their order.
        assert await s.insert([("xc", row(2, "2026-07-16T00:10:00+08:00")), ("xc", row(1)), ("xc", row(3))]) == 1
        assert await s.seqs("xc") == [1, 2, 3]
        assert await s.seqs("dc") == [1]
        # Days are asked in a time zone: 00:10 at +08:00 is the 16th in Shanghai and the 15th in UTC.
        assert [r.seq for r in await s.event_rows("xc", date(2026, 7, 16), date(2026, 7, 16), "Asia/Shanghai")] == [2]
        assert [r.seq for r in await s.event_rows("xc", date(2026, 7, 15), date(2026, 7, 15), "UTC")] == [1, 2, 3]
        cur = await s.conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'city_events'::regclass")
        r = await cur.fetchone()
        assert r is not None and r[0] == 2
    finally:
        await s.close()


async def test_report_rows_have_the_shape_of_the_halls_event_log(pg_dsn: str) -> None:
    s = CentralStore(pg_dsn)
    await s.connect()
    try:
        await s.migrate()
        sent = [
            EventLogRow(
                7, "2026-07-15T09:00:01.250000+08:00", "called", "20260715-A001", 3, {"number": "A001", "recall": 0}
            ),
            EventLogRow(
                8, "2026-07-15T09:05:00+08:00", "evaluated", "20260715-A001", 3, {"level": None, "channel": "pad"}
            ),
            EventLogRow(9, "2026-07-15T09:06:00+08:00", "paused", None, 3, {}),
        ]
        await s.insert([("xc", r) for r in reversed(sent)])
        assert await s.event_rows("xc", date(2026, 7, 15), date(2026, 7, 15)) == sent
    finally:
        await s.close()


async def test_the_gap_scan_finds_missing_seqs_and_moves_past_them_once_filled(pg_dsn: str) -> None:
    s = CentralStore(pg_dsn)
    await s.connect()
    try:
        await s.migrate()
        await s.insert([("xc", row(n)) for n in (1, 2, 5, 6, 9)] + [("dc", row(n)) for n in (1, 2, 3)])
        assert await s.scan_gaps() == [Gap("xc", 3, 4), Gap("xc", 7, 8)]
        await s.insert([("xc", row(3)), ("xc", row(4))])
        assert await s.scan_gaps() == [Gap("xc", 7, 8)]
        await s.skip_gap(Gap("xc", 7, 8), "purged_at_hall")
        assert await s.scan_gaps() == []
        await s.insert([("xc", row(11))])
        assert await s.scan_gaps() == [Gap("xc", 10, 10)]
    finally:
        await s.close()


async def test_day_figures_count_satisfaction_and_service_level(pg_dsn: str) -> None:
    s = CentralStore(pg_dsn)
    await s.connect()
    try:
        await s.migrate()
        t = "20260715-A00"
        rows = [
            EventLogRow(1, "2026-07-15T09:00:00+08:00", "issued", t + "1", None, {"number": "A001"}),
            EventLogRow(2, "2026-07-15T09:01:00+08:00", "issued", t + "2", None, {"number": "A002"}),
            EventLogRow(3, "2026-07-15T09:05:00+08:00", "called", t + "1", 1, {"number": "A001", "recall": 0}),
            EventLogRow(4, "2026-07-15T09:40:00+08:00", "called", t + "2", 1, {"number": "A002", "recall": 0}),
            EventLogRow(5, "2026-07-15T09:41:00+08:00", "evaluated", t + "1", 1, {"level": 5, "channel": "pad"}),
            EventLogRow(6, "2026-07-15T09:42:00+08:00", "evaluated", t + "2", 1, {"level": 1, "channel": "pad"}),
            EventLogRow(7, "2026-07-15T09:43:00+08:00", "evaluated", t + "3", 1, {"level": None, "channel": "pad"}),
        ]
        await s.insert([("xc", r) for r in rows])
        fig = (await s.day_figures(date(2026, 7, 15), 900))["xc"]
        assert (fig.issued, fig.called, fig.rated, fig.good) == (2, 2, 2, 1)
        assert (fig.first_calls, fig.within_target) == (2, 1)  # 4 min yes, 39 min no
    finally:
        await s.close()
