"""The central's PostgreSQL: the only module of ``hallctl/central/`` that holds SQL.

One table of every hall's event-log rows, ``city_events``, partitioned by the row's day
(the date of its ``at`` in the offset it carries: UTC, as halls write it), a partition per
day created ahead. Queries by a local day (the dashboard, reports) read the neighbouring
partitions and select by the date in the asked time zone.
Idempotent on (hall, seq): the primary key is (hall, day, seq) because a partitioned table's
keys must contain the partition key, and a row's day follows from its ``at``, which every
copy of a row (live, bridged twice, replayed) carries unchanged, so (hall, day, seq) is unique
exactly when (hall, seq) is. ``ON CONFLICT DO NOTHING`` makes a repeat cost one index probe.

``city_progress`` keeps per hall the highest seq up to which nothing is missing
(``contiguous``), so the gap scan reads only the rows after it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hallctl.citylog import REPORT_KINDS, EventLogRow

log = logging.getLogger(__name__)

# Held (transaction-scoped) while the schema or a partition is created: ingestors start together.
SCHEMA_LOCK = 0x6A11C7_01
# Held (session-scoped) by the one ingestor that scans for gaps and asks halls to replay.
GAP_LEADER_LOCK = 0x6A11C7_02

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS city_events (
        hall text NOT NULL,
        seq bigint NOT NULL,
        day date NOT NULL,
        at text NOT NULL,
        kind text NOT NULL,
        ticket_id text,
        window_no integer,
        data jsonb NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (hall, day, seq)
    ) PARTITION BY RANGE (day)""",
    "CREATE INDEX IF NOT EXISTS city_events_hall_seq ON city_events (hall, seq)",
    """CREATE TABLE IF NOT EXISTS city_progress (
        hall text PRIMARY KEY,
        contiguous bigint NOT NULL DEFAULT 0,
        contiguous_day date,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE IF NOT EXISTS city_lost (
        hall text NOT NULL,
        from_seq bigint NOT NULL,
        to_seq bigint NOT NULL,
        reason text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (hall, from_seq)
    )""",
]


# How far back a report looks for who was signed in at a window when its range began. The hall
# looks back without limit in its own log; the central bounds it so one report reads at most
# this many days of partitions: someone signed in at a window more than a month ago and never
# since signed out, nor replaced, counts as nobody there (docs/city.md).
SIGN_LOOKBACK_DAYS = 31

# Rows of the days %s..%s in a time zone %s: the partitions of the neighbouring days are read
# (a partition's day is the date in the row's own offset, UTC for a hall), then the local date decides.
_LOCAL_DAYS = (
    "day >= %s::date - 1 AND day <= %s::date + 1 AND (at::timestamptz AT TIME ZONE %s)::date BETWEEN %s AND %s"
)


def row_day(at: str) -> date:
    """The partition a row goes to: the date of ``at`` in its own offset (halls write UTC)."""
    return datetime.fromisoformat(at).date()


def partition_name(day: date) -> str:
    return f"city_events_{day:%Y%m%d}"


@dataclasses.dataclass(frozen=True, slots=True)
class Gap:
    hall: str
    from_seq: int
    to_seq: int


@dataclasses.dataclass(slots=True)
class HallDay:
    """One hall's figures of one day from its stored rows (the dashboard's event side)."""

    issued: int = 0
    called: int = 0
    finished: int = 0
    rated: int = 0
    good: int = 0  # level >= 3: not 差评 (the hall's own 好评率, hallctl/reports/stats.py)
    within_target: int = 0  # first calls within ``service_level_s`` of the issue
    first_calls: int = 0
    last_seq: int = 0


class CentralStore:
    """Typed methods over one async connection (one per ingestor, plus one for the gap leader)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._partitions: set[date] = set()

    async def connect(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn_closed(self) -> bool:
        return self._conn is None or self._conn.closed

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("not connected")
        return self._conn

    async def migrate(self) -> None:
        async with self.conn.transaction():
            await self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for stmt in SCHEMA:
                await self.conn.execute(stmt)

    async def ensure_partitions(self, days: Iterable[date]) -> int:
        """Create the daily partitions that do not exist yet; how many were new to this process."""
        missing = sorted(set(days) - self._partitions)
        if not missing:
            return 0
        async with self.conn.transaction():
            await self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for day in missing:
                await self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF city_events"
                    f" FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
                )
        self._partitions.update(missing)
        return len(missing)

    async def insert(self, rows: list[tuple[str, EventLogRow]]) -> int:
        """Store (hall, row) pairs; repeats of a stored (hall, seq) are skipped. Rows newly stored."""
        if not rows:
            return 0
        days = [row_day(r.at) for _, r in rows]
        await self.ensure_partitions(days)
        halls = [h for h, _ in rows]
        async with self.conn.transaction():
            cur = await self.conn.execute(
                "INSERT INTO city_events (hall, seq, day, at, kind, ticket_id, window_no, data)"
                " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::date[], %s::text[], %s::text[],"
                " %s::text[], %s::int[], %s::jsonb[]) ON CONFLICT DO NOTHING",
                (
                    halls,
                    [r.seq for _, r in rows],
                    days,
                    [r.at for _, r in rows],
                    [r.kind for _, r in rows],
                    [r.ticket_id for _, r in rows],
                    [r.window for _, r in rows],
                    [Jsonb(r.data) for _, r in rows],
                ),
            )
            stored = cur.rowcount
            await self.conn.execute(
                "INSERT INTO city_progress (hall) SELECT DISTINCT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (sorted(set(halls)),),
            )
        return stored

    # ---- gaps ------------------------------------------------------------------------------

    async def try_lead(self) -> bool:
        """Become the one gap scanner (a session lock: released when this connection goes)."""
        cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s)", (GAP_LEADER_LOCK,))
        r = await cur.fetchone()
        return bool(r and r[0])

    async def scan_gaps(self, limit: int = 200_000) -> list[Gap]:
        gaps, _ = await self.scan(limit)
        return gaps

    async def scan(self, limit: int = 200_000) -> tuple[list[Gap], dict[str, int]]:
        """Advance each hall's ``contiguous`` over the rows that follow it; the gaps that stop it.

        Rows are read from the contiguous row's day on (a day earlier for a hall clock set back);
        a row whose ``at`` lies further back than that is not seen here, so its seq stays a gap
        until the requests give up (``city_lost``).
        """
        cur = await self.conn.execute(
            "SELECT p.hall, p.contiguous, e.seq, e.day FROM city_progress p LEFT JOIN city_events e ON e.hall = p.hall"
            " AND e.seq > p.contiguous AND (p.contiguous_day IS NULL OR e.day >= p.contiguous_day - 1)"
            " ORDER BY p.hall, e.seq LIMIT %s",
            (limit,),
        )
        gaps: list[Gap] = []
        tops: dict[str, int] = {}
        advanced: dict[str, tuple[int, date]] = {}
        hall: str | None = None
        expected = 0
        stuck = False
        for h, contiguous, seq, day in await cur.fetchall():
            if h != hall:
                hall, expected, stuck = h, int(contiguous) + 1, False
            tops[h] = max(tops.get(h, 0), int(contiguous), seq or 0)
            if seq is None or seq < expected:
                continue
            if seq > expected:
                gaps.append(Gap(h, expected, seq - 1))
                stuck = True
            elif not stuck:
                advanced[h] = (seq, day)
            expected = seq + 1
        if advanced:
            async with self.conn.transaction():
                cur2 = self.conn.cursor()
                await cur2.executemany(
                    "UPDATE city_progress SET contiguous = %s, contiguous_day = %s, updated_at = now()"
                    " WHERE hall = %s AND contiguous < %s",
                    [(s, d, h, s) for h, (s, d) in advanced.items()],
                )
        return gaps, tops

    async def skip_gap(self, gap: Gap, reason: str) -> None:
        """Record ``gap`` as lost (the hall no longer has it, or never answered) and scan past it."""
        async with self.conn.transaction():
            await self.conn.execute(
                "INSERT INTO city_lost (hall, from_seq, to_seq, reason) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (hall, from_seq) DO UPDATE SET to_seq = excluded.to_seq, reason = excluded.reason",
                (gap.hall, gap.from_seq, gap.to_seq, reason),
            )
            await self.conn.execute(
                "UPDATE city_progress SET contiguous = %s, updated_at = now() WHERE hall = %s AND contiguous = %s",
                (gap.to_seq, gap.hall, gap.from_seq - 1),
            )

    # ---- reading ---------------------------------------------------------------------------

    async def seqs(self, hall: str) -> list[int]:
        """Every stored seq of ``hall`` in order (tests and checks: compare with the hall's log)."""
        cur = await self.conn.execute("SELECT seq FROM city_events WHERE hall = %s ORDER BY seq", (hall,))
        return [int(r[0]) for r in await cur.fetchall()]

    async def event_rows(self, hall: str, first_day: date, last_day: date, tz: str = "UTC") -> list[EventLogRow]:
        """``hall``'s rows of the days ``first_day..last_day`` (days in ``tz``) in the shape of its own event log.

        The central's source for the hall's report code (pure functions over event-log rows):
        the same fields, the same ``at`` text, in seq order, so one report code reads either.
        """
        cur = await self.conn.execute(
            "SELECT seq, at, kind, ticket_id, window_no, data FROM city_events"
            f" WHERE hall = %s AND {_LOCAL_DAYS} ORDER BY seq",
            (hall, first_day, last_day, tz, first_day, last_day),
        )
        return [
            EventLogRow(int(s), at, kind, tid, win, data if isinstance(data, dict) else json.loads(data))
            for s, at, kind, tid, win, data in await cur.fetchall()
        ]

    async def report_rows(self, hall: str, start: datetime, end: datetime) -> list[EventLogRow]:
        """What the hall's ``Store.report_events`` reads, from the central's copy: ``hall``'s report rows
        with ``start <= at < end`` in seq order, preceded by each window's last sign-in or sign-out
        before ``start`` (looked for at most ``SIGN_LOOKBACK_DAYS`` back: who was at the window)."""
        lo, hi = start.date() - timedelta(days=1), end.date() + timedelta(days=1)
        cur = await self.conn.execute(
            "SELECT seq, at, kind, ticket_id, window_no, data FROM (SELECT DISTINCT ON (window_no) * FROM city_events"
            " WHERE hall = %s AND day >= %s AND day <= %s AND kind IN ('signed_in', 'signed_out')"
            " AND at::timestamptz < %s ORDER BY window_no, seq DESC) s ORDER BY seq",
            (hall, start.date() - timedelta(days=SIGN_LOOKBACK_DAYS), hi, start),
        )
        before = await cur.fetchall()
        cur = await self.conn.execute(
            "SELECT seq, at, kind, ticket_id, window_no, data FROM city_events WHERE hall = %s AND day >= %s"
            " AND day <= %s AND at::timestamptz >= %s AND at::timestamptz < %s AND kind = ANY(%s) ORDER BY seq",
            (hall, lo, hi, start, end, list(REPORT_KINDS)),
        )
        return [
            EventLogRow(int(s), at, kind, tid, win, data if isinstance(data, dict) else json.loads(data))
            for s, at, kind, tid, win, data in [*before, *await cur.fetchall()]
        ]

    async def halls_with_rows(self, first_day: date, last_day: date) -> list[str]:
        """The halls with any stored row in the partitions of ``first_day - 1 .. last_day + 1``."""
        cur = await self.conn.execute(
            "SELECT DISTINCT hall FROM city_events WHERE day >= %s AND day <= %s ORDER BY hall",
            (first_day - timedelta(days=1), last_day + timedelta(days=1)),
        )
        return [str(r[0]) for r in await cur.fetchall()]

    async def day_figures(self, day: date, service_level_s: int, tz: str = "UTC") -> dict[str, HallDay]:
        """Per hall, ``day``'s counts (a day in ``tz``) from the stored rows (issues, calls, 好评率, service level)."""
        out: dict[str, HallDay] = {}
        cur = await self.conn.execute(
            "SELECT hall,"
            " count(*) FILTER (WHERE kind = 'issued'),"
            " count(*) FILTER (WHERE kind = 'called'),"
            " count(*) FILTER (WHERE kind = 'finished'),"
            " count(*) FILTER (WHERE kind = 'evaluated' AND data->>'level' IS NOT NULL),"
            " count(*) FILTER (WHERE kind = 'evaluated' AND (data->>'level')::int >= 3),"
            " max(seq)"
            f" FROM city_events WHERE {_LOCAL_DAYS} GROUP BY hall",
            (day, day, tz, day, day),
        )
        for hall, issued, called, finished, rated, good, last in await cur.fetchall():
            out[hall] = HallDay(int(issued), int(called), int(finished), int(rated), int(good), 0, 0, int(last))
        cur = await self.conn.execute(
            "WITH i AS (SELECT hall, ticket_id, min(at::timestamptz) AS t FROM city_events"
            f"  WHERE {_LOCAL_DAYS} AND kind = 'issued' GROUP BY hall, ticket_id),"
            " c AS (SELECT hall, ticket_id, min(at::timestamptz) AS t FROM city_events"
            f"  WHERE {_LOCAL_DAYS} AND kind = 'called' GROUP BY hall, ticket_id)"
            " SELECT i.hall, count(*), count(*) FILTER (WHERE c.t - i.t <= make_interval(secs => %s))"
            " FROM i JOIN c ON c.hall = i.hall AND c.ticket_id = i.ticket_id GROUP BY i.hall",
            (day, day, tz, day, day, day, day, tz, day, day, service_level_s),
        )
        for hall, first_calls, within in await cur.fetchall():
            fig = out.setdefault(hall, HallDay())
            fig.first_calls, fig.within_target = int(first_calls), int(within)
        return out

    async def disk_bytes(self) -> int:
        """The size of the events table with its partitions and indexes (for sizing)."""
        cur = await self.conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
            " WHERE inhparent = 'city_events'::regclass"
        )
        r = await cur.fetchone()
        return int(r[0]) if r else 0
