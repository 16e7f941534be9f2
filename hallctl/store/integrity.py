"""What keeps the database honest across crashes and a second daemon: files beside it.

* :class:`DaemonLock` — ``<db>.lock``, an exclusive ``flock`` held for the daemon's
  lifetime. A second daemon on the same database stops before it opens the store or
  connects to MQTT (so it never takes over the first one's client id). The CLI's
  read-only commands and ``hallctl backup`` do not take it.
* :class:`HighWater` — ``<db>.hwm``, the highest ticket number handed out per business
  day and category, written after each commit that issues a number and before the issue
  is acknowledged: the older of two checksummed slots rewritten in place through an
  ``O_DSYNC`` descriptor (a cut write leaves the other slot, which covers every acknowledged
  number). A WAL that lost frames loses tickets silently in SQLite (recovery stops at the
  first bad frame checksum); this file is how the daemon notices, and why a number is
  never handed out twice.
* :func:`check` — the start-up checks, bounded so a year of history does not slow the
  start: ``PRAGMA quick_check`` of every table except the history tables (tickets,
  event log, evaluations, sensor data: the bulk of the file), the last
  :data:`RECENT_LOG_ROWS` rows of the event log are continuous and every ticket they say
  was issued exists, and no number in the high-water file is above the tickets table.
  A WAL that lost frames, or rows deleted in the recent past, are caught here: that is
  what goes wrong in a crash. :func:`full_check` (``PRAGMA quick_check`` of the whole
  file) runs after the daemon serves, on its own read-only connection.

Files holding personal data (the database and its -wal/-shm, backups) and these two are
created ``0600`` whatever the umask: :func:`private_file`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
import threading
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hallctl.errors import StoreUnavailable

log = logging.getLogger(__name__)

PRIVATE = 0o600
HWM_KEEP_DAYS = 7


class StoreRefused(StoreUnavailable):
    """The daemon must not start on this database (in use, damaged, unusable path): exit 2."""


def path_error(path: str | os.PathLike[str], exc: OSError) -> StoreRefused:
    """One line naming the path and the cause (read-only, missing, not a directory...)."""
    where = exc.filename or path
    cause = exc.strerror or type(exc).__name__
    return StoreRefused("store_path", f"cannot use database path {path}: {cause}: {where}")


def ensure_dir(db_path: str | os.PathLike[str]) -> None:
    """Create the database's directory if missing; a regular file in the way is ENOTDIR, not EEXIST."""
    parent = Path(db_path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent)) from None


def private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` 0600 if missing, else make it 0600 (owner only)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def tighten(path: str | os.PathLike[str]) -> None:
    """chmod 0600 an existing file (-wal, -shm); a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, PRIVATE)


class DaemonLock:
    """``flock(LOCK_EX | LOCK_NB)`` on ``<db>.lock``; the file holds the owner's PID."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = Path(db_path + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            ensure_dir(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        except OSError as exc:
            raise path_error(self.db_path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise StoreRefused(
                "store_in_use",
                f"database {self.db_path} is in use by another hallctl daemon:"
                f" lock {self.path} is held by PID {holder}",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise path_error(self.db_path, exc) from exc
        os.fchmod(fd, PRIVATE)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The high-water file's layout: two slots of ``size`` bytes each (the file is twice that). A
# slot is ``SLOT_MAGIC``, a header line ``<seq> <crc32> <length>``, then the marks as JSON,
# padded with NULs. Each raise rewrites the older slot in place with one ``pwrite`` on an
# ``O_DSYNC`` descriptor (it returns once the data is on disk, as ``fdatasync`` would): one
# flush of the file's data, where a new file, its rename and its directory took two fsyncs and
# a journal commit in front of every batch's answers (issue 12). A write cut by a power
# failure leaves that slot's checksum wrong, and the other slot, the previous marks, covers
# every number acknowledged before the cut (nobody hears of a number before its raise returns).
SLOT_MAGIC = b"hallctl-hwm 1\n"
SLOT_MIN = 4096


def _slot(seq: int, body: bytes) -> bytes:
    """A slot's bytes before its NUL padding."""
    return SLOT_MAGIC + b"%020d %08x %010d\n" % (seq, zlib.crc32(body), len(body)) + body


def _read_slot(slot: bytes) -> tuple[int, bytes] | None:
    """(seq, body) of an intact slot, else None."""
    if not slot.startswith(SLOT_MAGIC):
        return None
    head, sep, rest = slot[len(SLOT_MAGIC) :].partition(b"\n")
    parts = head.split()
    if not sep or len(parts) != 3:
        return None
    try:
        seq, crc, length = int(parts[0]), int(parts[1], 16), int(parts[2])
    except ValueError:
        return None
    body = rest[:length]
    return (seq, body) if len(body) == length and zlib.crc32(body) == crc else None


def decode_marks_file(data: bytes) -> tuple[Any, int]:
    """The marks document and its sequence number, from either layout.

    The newer intact slot wins; a file written before the slots (one JSON document) reads as
    sequence 0. ``ValueError`` when neither slot is intact and the file is not that document.
    """
    if len(data) >= 2 * SLOT_MIN and len(data) % 2 == 0:
        half = len(data) // 2
        intact = [r for r in (_read_slot(data[:half]), _read_slot(data[half:])) if r is not None]
        if intact:
            seq, body = max(intact)
            return json.loads(body), seq
    return json.loads(data), 0


class HighWater:
    """Per (business day, category) the highest number ever acknowledged, outside the database."""

    def __init__(self, db_path: str) -> None:
        self.path = Path(db_path + ".hwm")
        self.marks: dict[tuple[date, str], int] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self._fd: int | None = None  # the slot file, open for in-place writes once this process made it
        self._size = 0  # bytes per slot
        self._seq = 0
        self._next = 0  # the slot the next raise writes

    def load(self) -> dict[tuple[date, str], int]:
        try:
            raw, seq = decode_marks_file(self.path.read_bytes())
        except FileNotFoundError:
            raw, seq = {}, 0
        except (OSError, ValueError) as exc:
            # An unreadable mark is itself damage worth a line; numbering falls back to the database.
            log.error("store: high-water file %s unreadable: %s", self.path, exc)
            self.last_error = f"high-water file unreadable: {exc}"
            raw, seq = {}, 0
        marks: dict[tuple[date, str], int] = {}
        for day, cats in raw.items() if isinstance(raw, dict) else ():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                for cat, n in cats.items():
                    marks[(date.fromisoformat(day), str(cat))] = int(n)
        with self._lock:
            self.marks = marks
            self._seq = max(self._seq, seq)
        tighten(self.path)
        return dict(marks)

    def raise_to(self, counters: dict[tuple[date, str], int]) -> None:
        """Raise the marks to ``counters`` and persist, if any went up (writer thread, after the commit)."""
        with self._lock:
            if all(self.marks.get(k, 0) >= v for k, v in counters.items()):
                return
            marks = dict(self.marks)
            for k, v in counters.items():
                marks[k] = max(marks.get(k, 0), v)
            newest = max(k[0] for k in marks)
            marks = {k: v for k, v in marks.items() if k[0] >= newest - timedelta(days=HWM_KEEP_DAYS)}
            doc: dict[str, dict[str, int]] = {}
            for (day, cat), n in sorted(marks.items()):
                doc.setdefault(day.isoformat(), {})[cat] = n
            try:
                self._persist(json.dumps(doc, separators=(",", ":")).encode())
            except OSError as exc:
                # The ticket is committed (and fsynced) already; the database still protects its number.
                self.last_error = f"cannot write {self.path}: {exc.strerror or exc}"
                log.error("store: %s", self.last_error)
                self._close_fd()  # the next raise starts a new file
                return
            self.marks = marks
            self.last_error = None

    def _persist(self, body: bytes) -> None:
        self._seq += 1
        slot = _slot(self._seq, body)
        if self._fd is not None and len(slot) <= self._size:
            # One call: the file is open with O_DSYNC, so pwrite returns once the slot is on disk
            # (as fdatasync would). One syscall less is one GIL round trip less for the writer,
            # which waits for the busy event loop at each (issue 12).
            os.pwrite(self._fd, slot.ljust(self._size, b"\0"), self._next * self._size)
            self._next = 1 - self._next
            return
        # The first raise of this process (the file may be in the older layout, or damaged), or marks
        # that outgrew a slot: a new file with both slots, put in place atomically.
        self._close_fd()
        size = SLOT_MIN
        while len(slot) > size:
            size *= 2
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE)
        try:
            os.write(fd, slot.ljust(size, b"\0") * 2)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_DSYNC)
        self._size, self._next = size, 0

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._close_fd()


# The tables that grow with history: their b-trees are checked by full_check after start,
# not before serving; the recent part the queue loads is read through their indexes at start.
HISTORY_TABLES = frozenset({"tickets", "event_log", "evaluations"})  # and every sensor_* table
# How far back the event log is checked at start: about two weeks of a busy hall (1,500 tickets
# a day, ~6 rows each); rows lost in a crash are always the newest ones.
RECENT_LOG_ROWS = 100_000


def _quick_check(conn: sqlite3.Connection, table: str | None = None) -> list[str]:
    sql = "PRAGMA quick_check" if table is None else f'PRAGMA quick_check("{table}")'
    rows = conn.execute(sql).fetchall()
    if [r[0] for r in rows] == ["ok"]:
        return []
    where = "quick_check" if table is None else f"quick_check({table})"
    return [f"{where}: " + "; ".join(str(r[0]) for r in rows[:3])]


def full_check(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA quick_check`` of the whole file (every page, every table): seconds on a year of history."""
    return _quick_check(conn)


def check(conn: sqlite3.Connection, marks: dict[tuple[date, str], int]) -> list[str]:
    """The bounded start-up checks; each finding is one short sentence (empty: healthy).

    Cost does not grow with history: the small tables are checked whole, the event log only
    in its last :data:`RECENT_LOG_ROWS` rows (a rowid range), the tickets table through its
    (day, category, seq) index for the days in the high-water file.
    """
    found: list[str] = []
    tables = [
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    for table in tables:
        if table not in HISTORY_TABLES and not table.startswith("sensor_"):
            found += _quick_check(conn, table)
    if found:
        return found  # the tables below cannot be trusted
    top = conn.execute("SELECT MAX(seq) FROM event_log").fetchone()[0] or 0
    since = top - RECENT_LOG_ROWS
    n, lo, hi = conn.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM event_log WHERE seq > ?", (since,)).fetchone()
    if n and hi - lo + 1 != n:
        found.append(f"event log has gaps: {n} rows for seq {lo}..{hi}")
    # `+e.kind`: the rowid range, never the (kind, window, seq) index, which SQLite chose and which
    # walked every 'issued' row of the whole history (≈0.02 s more per year, issue 12 goal 4).
    missing = [
        r[0]
        for r in conn.execute(
            "SELECT e.ticket_id FROM event_log e WHERE e.seq > ? AND +e.kind = 'issued'"
            " AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = e.ticket_id) ORDER BY e.seq LIMIT 6",
            (since,),
        )
    ]
    if missing:
        found.append("issued tickets missing from the tickets table: " + ", ".join(missing[:5]))
    if marks:
        oldest = min(k[0] for k in marks)
        db_max = {
            (date.fromisoformat(r[0]), str(r[1])): int(r[2])
            for r in conn.execute(
                "SELECT day, category, MAX(seq) FROM tickets WHERE day >= ? GROUP BY 1, 2", (oldest.isoformat(),)
            )
        }
        lost = [
            f"{day} {cat}: acknowledged up to {n}, database has {db_max.get((day, cat), 0)}"
            for (day, cat), n in sorted(marks.items())
            if n > db_max.get((day, cat), 0)
        ]
        if lost:
            found.append("tickets lost (high-water mark above the database): " + "; ".join(lost[:5]))
    return found
