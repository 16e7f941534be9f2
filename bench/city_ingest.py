"""City ingestion sizing (issue 16): 110 halls' event-log streams into one ``hallctl central`` and PostgreSQL.

One run, all local and started here: PostgreSQL from Debian's packages (initdb in a temp dir,
``fsync = on``: a real database's cost), one Mosquitto, one ``hallctl central`` process (the
shipped code path: shared subscription, batches, ``ON CONFLICT DO NOTHING``, daily partitions).

The city is generated from a simple model of a hall day (the "1 + 10 + 100" of the issue): one
city centre with ``--centre`` tickets a day, ten district halls with ``--district``, ``--towns``
town and village points with ``--town``; each ticket is ``issued``, ``called``, ``serving``,
``finished`` and 60 % ``evaluated`` rows, plus each window's sign-in/sign-out and the day's
opening row, all stamped over a 09:00-17:00 day with the morning peak of the demo's load model.

Two phases:

* ``day``: a whole city-day of rows is published as fast as one publisher process can
  (QoS 1); events/s = rows ÷ (last commit − first commit) in PostgreSQL; the central's CPU
  (psutil ``cpu_times`` of its pid) and PostgreSQL's (every ``postgres`` process) over the
  phase, per 1,000 rows and per hall-day; disk = the partitions' size with their indexes
  (``pg_total_relation_size``) ÷ hall-days.
* ``live``: rows stamped with the present time at ``--live-rate`` rows/s for ``--live-seconds``;
  lag = commit time (``received_at``) − the row's ``at``, p50/p95/max.

The machine is shared (2 cores for several engineers): the figures are noisy, CPU time is
process CPU, and the closing note extrapolates to a province (1,500 halls) from ratios.

    .venv/bin/python bench/city_ingest.py [--towns 99] [--centre 3000] [--district 800] [--town 80]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from hallctl.central.store import CentralStore  # noqa: E402
from hallctl.citylog import EventLogRow  # noqa: E402
from tests.city.city_helpers import Central  # noqa: E402
from tests.city.pg_helpers import Postgres  # noqa: E402
from tests.mqtt.mqtt_helpers import Mosquitto  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
# Share of a day's tickets per opening hour 09..16 (a morning peak, a lunch dip, as the demo's load).
HOURS = [0.16, 0.19, 0.15, 0.07, 0.11, 0.13, 0.12, 0.07]


def hall_day(hall: str, tickets: int, windows: int, day: datetime, rng: random.Random) -> list[EventLogRow]:
    """One hall's event-log rows of a day, in seq order (the shape the hall's feed publishes)."""
    rows: list[tuple[datetime, str, str | None, int | None, dict[str, object]]] = []
    opening = day.replace(hour=9, minute=0, second=0, microsecond=0)
    rows.append((opening - timedelta(minutes=30), "day_opened", None, None, {"day": day.date().isoformat()}))
    for w in range(1, windows + 1):
        rows.append((opening - timedelta(minutes=5), "signed_in", None, w, {"staff": f"{w:04d}"}))
        rows.append((opening + timedelta(hours=8), "signed_out", None, w, {"staff": f"{w:04d}"}))
    n = 0
    for h, share in enumerate(HOURS):
        for _ in range(max(1, round(tickets * share))):
            n += 1
            number = f"A{n:03d}"
            tid = f"{day:%Y%m%d}-{number}"
            issued = opening + timedelta(hours=h, seconds=rng.uniform(0, 3600))
            called = issued + timedelta(seconds=rng.expovariate(1 / 600))
            done = called + timedelta(seconds=30 + rng.expovariate(1 / 420))
            w = rng.randint(1, windows)
            rows.append((issued, "issued", tid, None, {"number": number, "priority": "normal", "channel": "kiosk"}))
            rows.append((called, "called", tid, w, {"number": number, "recall": 0}))
            rows.append((called + timedelta(seconds=20), "serving", tid, w, {"number": number}))
            rows.append((done, "finished", tid, w, {"number": number, "service_s": (done - called).total_seconds()}))
            if rng.random() < 0.6:
                level = rng.choice([5, 5, 5, 5, 4, 4, 3, 2, 1])
                rows.append((done + timedelta(seconds=15), "evaluated", tid, w, {"level": level, "channel": "pad"}))
    rows.sort(key=lambda r: r[0])
    return [EventLogRow(i + 1, at.isoformat(), k, tid, w, d) for i, (at, k, tid, w, d) in enumerate(rows)]


def city(args: argparse.Namespace, day: datetime) -> dict[str, list[EventLogRow]]:
    rng = random.Random(16)
    out = {"shi": hall_day("shi", args.centre, 40, day, rng)}
    for i in range(10):
        out[f"qu{i:02d}"] = hall_day(f"qu{i:02d}", args.district, 15, day, rng)
    for i in range(args.towns):
        out[f"zhen{i:03d}"] = hall_day(f"zhen{i:03d}", args.town, 3, day, rng)
    return out


def cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def postgres_procs(pg: Postgres) -> list[psutil.Process]:
    pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]


def publish_all(port: int, messages: list[tuple[str, str]], rate: float | None = None) -> float:
    """Publish ``messages`` at QoS 1 (as fast as possible, or ``rate`` a second); the publisher's CPU."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="bench-city-halls")
    c.max_inflight_messages_set(100)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not connected.wait(10):
        raise SystemExit("the bench publisher could not connect")
    me = psutil.Process()
    cpu0 = cpu_s([me])
    t0 = time.monotonic()
    window: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
    for i, (topic, payload) in enumerate(messages):
        if rate is not None:
            due = t0 + i / rate
            while time.monotonic() < due:
                time.sleep(min(0.01, due - time.monotonic()))  # pacing the generator, not synchronisation
        window.append(c.publish(topic, payload, qos=1))
        if len(window) > 2000:  # bounded: the client's queue never grows past a few thousand
            window.popleft().wait_for_publish(60)
    while window:
        window.popleft().wait_for_publish(60)
    cpu = cpu_s([me]) - cpu0
    c.loop_stop()
    c.disconnect()
    return cpu


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        r = conn.execute("SELECT count(*) FROM city_events").fetchone()
        return int(r[0]) if r else 0


def wait_rows(dsn: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count(dsn) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {count(dsn)} of {n} rows stored within {timeout} s")
        time.sleep(0.2)  # bounded poll of PostgreSQL


async def dashboard_query_ms(dsn: str, day: datetime) -> float:
    store = CentralStore(dsn)
    await store.connect()
    try:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            found = await store.day_figures(day.date(), 900, "Asia/Shanghai")
            best = min(best, time.perf_counter() - t)
        assert len(found) > 0
        return best * 1000
    finally:
        await store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--towns", type=int, default=99, help="town and village points (1 + 10 + this halls)")
    ap.add_argument("--centre", type=int, default=3000, help="tickets a day at the city centre")
    ap.add_argument("--district", type=int, default=800, help="tickets a day at each district hall")
    ap.add_argument("--town", type=int, default=80, help="tickets a day at each town or village point")
    ap.add_argument("--live-rate", type=float, default=200.0, help="rows/s in the live phase")
    ap.add_argument("--live-seconds", type=float, default=10.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-city-"))
    pg = Postgres(fsync=True)
    broker = Mosquitto(work, extra="max_queued_messages 0\n")
    central: Central | None = None
    try:
        pg.start()
        dsn = pg.new_database()
        broker.start()
        central = Central(work / "central", broker.url, dsn)
        central.data["gaps"] = {"scan_s": 5.0, "tail_probe_s": 3600.0}
        central.data["postgres"] = {"dsn": dsn, "flush_ms": 100}
        central.start()
        assert central.proc is not None
        cproc = psutil.Process(central.proc.pid)
        pgp = postgres_procs(pg)

        day = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        halls = city(args, day)
        rows_total = sum(len(r) for r in halls.values())
        # Interleaved by time, as a city's halls publish side by side.
        merged = sorted(((r.at, h, r) for h, rows in halls.items() for r in rows), key=lambda x: x[0])
        messages = [(f"hallctl/{h}/event/log", r.wire(h)) for _, h, r in merged]
        print(f"{len(halls)} halls, {rows_total} rows in the city-day ({rows_total / len(halls):.0f} per hall-day)")

        c0, p0, t0 = cpu_s([cproc]), cpu_s(pgp), time.monotonic()
        pub_cpu = publish_all(broker.port, messages)
        wait_rows(dsn, rows_total, 600)
        wall = time.monotonic() - t0
        c_cpu, p_cpu = cpu_s([cproc]) - c0, cpu_s(pgp) - p0
        with psycopg.connect(dsn) as conn:
            r = conn.execute(
                "SELECT extract(epoch from max(received_at) - min(received_at)) FROM city_events"
            ).fetchone()
            span = float(r[0]) if r and r[0] else wall
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
                " WHERE inhparent = 'city_events'::regclass"
            ).fetchone()
            disk = int(size[0]) if size else 0
        rate = rows_total / max(span, 1e-6)
        hall_days = len(halls)
        print(
            f"day: {rows_total} rows in {wall:.1f} s wall ({span:.1f} s first to last commit): {rate:.0f} rows/s; "
            f"CPU central {c_cpu:.1f} s, PostgreSQL {p_cpu:.1f} s, publisher {pub_cpu:.1f} s"
        )
        print(f"disk: {disk / 1e6:.1f} MB for {hall_days} hall-days = {disk / hall_days / 1e3:.0f} kB per hall-day, "
              f"{disk / rows_total:.0f} B per row")  # fmt: skip

        # The dashboard's day query (every hall's counts, service level, 好评率) over the stored city-day.
        fig_ms = asyncio.run(dashboard_query_ms(dsn, day))
        print(f"dashboard day query over the city-day: {fig_ms:.0f} ms (best of 3)")

        # Live: rows stamped now, at a steady rate; lag = commit - at.
        live_halls = list(halls)
        n_live = int(args.live_rate * args.live_seconds)
        start_seq = {h: len(rows) for h, rows in halls.items()}
        live_msgs = []
        t_live = datetime.now(TZ)
        for i in range(n_live):
            h = live_halls[i % len(live_halls)]
            start_seq[h] += 1
            at = t_live + timedelta(seconds=i / args.live_rate)
            row = EventLogRow(start_seq[h], at.isoformat(), "issued", f"L{i}", None, {"number": f"L{i:05d}"})
            live_msgs.append((f"hallctl/{h}/event/log", row.wire(h)))
        publish_all(broker.port, live_msgs, rate=args.live_rate)
        wait_rows(dsn, rows_total + n_live, 120)
        with psycopg.connect(dsn) as conn:
            lags = [
                float(x[0])
                for x in conn.execute(
                    "SELECT extract(epoch from received_at - at::timestamptz) FROM city_events"
                    " WHERE ticket_id LIKE 'L%%'"
                ).fetchall()
            ]
        p50, p95, worst = figures.percentile(lags, 0.5), figures.percentile(lags, 0.95), max(lags)
        print(f"live: {n_live} rows at {args.live_rate:.0f}/s: lag p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"max {worst * 1000:.0f} ms")  # fmt: skip
        health = central.health()
        print("central health:", json.dumps(health))

        per_hd_cpu = (c_cpu + p_cpu) / hall_days
        province = 1500 / hall_days
        print(
            f"province (1,500 halls, x{province:.1f}): {rows_total * province / 1e6:.2f} M rows/day, "
            f"{disk * province / 1e9:.2f} GB/day ({disk * province * 365 / 1e12:.2f} TB/year with indexes), "
            f"{per_hd_cpu * 1500:.0f} CPU-s/day of ingestion at this machine's speed; a whole province-day "
            f"replayed at once takes {rows_total * province / rate / 60:.0f} min at the measured rate"
        )
        detail = (
            f"{hall_days} halls (1+10+{args.towns}), {rows_total} rows/city-day, one publisher at QoS 1, one central, "
            f"PostgreSQL fsync=on, shared 2-core machine (noisy)"
        )
        figures.record(
            figures.Figure("city_ingest", "ingest rate", round(rate), "rows/s", 1000, ">=", "16", detail),
            figures.Figure(
                "city_ingest", "central CPU per 1,000 rows", round(c_cpu / rows_total * 1000, 3), "CPU-s", None,
                detail="hallctl central process CPU over the day phase",
            ),
            figures.Figure(
                "city_ingest", "PostgreSQL CPU per 1,000 rows", round(p_cpu / rows_total * 1000, 3), "CPU-s", None,
                detail="every postgres process over the day phase",
            ),
            figures.Figure(
                "city_ingest", "CPU per hall-day", round(per_hd_cpu, 3), "CPU-s", None,
                detail=f"central + PostgreSQL; {rows_total / hall_days:.0f} rows per hall-day on average",
            ),
            figures.Figure(
                "city_ingest", "disk per hall-day", round(disk / hall_days / 1e3, 1), "kB", None,
                detail=f"partitions with indexes; {disk / rows_total:.0f} B per row",
            ),
            figures.Figure(
                "city_ingest", "dashboard day query", round(fig_ms), "ms", None,
                detail=f"CentralStore.day_figures over {rows_total} rows of {hall_days} halls (best of 3)",
            ),
            figures.Figure(
                "city_ingest", "live lag p95", round(p95 * 1000), "ms", 2000, "<=", "16",
                detail=f"{args.live_rate:.0f} rows/s for {args.live_seconds:.0f} s; commit time - row time",
            ),
        )  # fmt: skip
        return 0
    finally:
        if central is not None:
            central.stop()
        broker.stop()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
