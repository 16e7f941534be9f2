"""The database: connections, the writer and reader threads, migrations, backups.

Why these choices: an acknowledged ticket must survive ``kill -9`` and a power
cut, so every commit is fsynced (FULL) before the API answers; WAL lets the
screens and stats read while the writer works. All writes go through one
dedicated thread with its own connection, so the event loop never blocks on
fsync and SQLite never sees two writers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from hallctl.errors import StoreUnavailable
from hallctl.store.integrity import (
    HighWater,
    StoreRefused,
    check,
    ensure_dir,
    full_check,
    path_error,
    private_file,
    tighten,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _classify(exc: sqlite3.Error) -> StoreUnavailable:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreUnavailable("store_locked", "数据库正忙，请稍后重试", "the database is locked; retry shortly")
    if "full" in text:
        return StoreUnavailable("store_full", "存储空间已满，请联系管理员", "the database or disk is full")
    return StoreUnavailable("store_error", "数据库写入失败，请稍后重试", f"database error: {type(exc).__name__}")


class Database:
    """The connection pair and their threads: one writer, one reader; migrations at open."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 2000, max_size_mb: float | None = None) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.max_size_mb = max_size_mb
        self._writer_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hallctl-store-writer")
        self._reader_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hallctl-store-reader")
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self.write_errors = 0
        self.last_error: str | None = None
        # Beside a file database: the per-day number high-water mark (see hallctl.store.integrity).
        self.high_water: HighWater | None = None if path == ":memory:" else HighWater(path)
        self.damage: list[str] = []  # what the start-up check found (continued with on_damage = "continue")

    # ---- lifecycle --------------------------------------------------------------

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _files(self) -> list[str]:
        return [self.path, self.path + "-wal", self.path + "-shm"]

    def _open_writer(self) -> None:
        if self.path != ":memory:":
            try:
                ensure_dir(self.path)
                # Names and ID numbers live here: owner-only whatever the umask. SQLite creates
                # -wal and -shm with the database file's mode; existing ones are tightened below.
                private_file(self.path)
            except OSError as exc:
                raise path_error(self.path, exc) from exc
        conn = self._connect(readonly=False)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and self.path != ":memory:":
            raise StoreUnavailable("store_error", f"cannot enable WAL (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        # Deleted rows (purged names, ID numbers) are overwritten with zeros, not left in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        if self.path != ":memory:":
            for f in self._files():
                tighten(f)
        if self.high_water is not None:
            self.high_water.load()
        if self.max_size_mb is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, int(self.max_size_mb * 1024 * 1024 / page_size))}")
        self._migrate(conn)
        self._w = conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        files = sorted(
            (f for f in resources.files("hallctl.store.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        for f in files:
            number = int(f.name.split("_", 1)[0])
            if number <= version:
                continue
            log.info("store: applying migration %s", f.name)
            script = f.read_text(encoding="utf-8")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in split_sql(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_pool, self._open_writer)
            self._r = await loop.run_in_executor(self._reader_pool, self._connect, True)
        except sqlite3.Error as exc:
            raise StoreRefused("store_error", f"cannot open database {self.path}: {exc}") from exc
        except OSError as exc:
            raise path_error(self.path, exc) from exc

    async def verify(self, on_damage: str = "refuse") -> list[str]:
        """The daemon's start-up check (hallctl.store.integrity.check) against the high-water file.

        Damage refuses the start (:class:`StoreRefused`, code ``store_damaged``) unless
        ``on_damage == "continue"``: then it is kept in :attr:`damage` for health, and numbering
        continues after the high-water mark (:meth:`Store.load_queue`), so no number is reused.
        """

        def fn() -> list[str]:
            assert self._w is not None
            marks = dict(self.high_water.marks) if self.high_water is not None else {}
            return check(self._w, marks)

        try:
            found = await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)
        except sqlite3.Error as exc:
            found = [f"{type(exc).__name__}: {exc}"]
        if found:
            if on_damage != "continue":  # the refusal is the one line; no log around it
                raise StoreRefused(
                    "store_damaged",
                    f"database {self.path} is damaged ({'; '.join(found)}); refusing to start"
                    ' (restore a backup, or set [store] on_damage = "continue" to go on after the high-water mark)',
                )
            for line in found:
                log.error("store: damage in %s (continuing after the high-water mark): %s", self.path, line)
        self.damage = found
        return found

    async def verify_full(self) -> list[str]:
        """``PRAGMA quick_check`` of the whole file, after the daemon serves (see :func:`integrity.full_check`).

        On its own read-only connection and thread, so the writer and the reader keep
        serving; cancelling interrupts SQLite. Findings are added to :attr:`damage` (health
        then reports the store damaged); the caller raises the alert. The start-up
        :meth:`verify` is bounded and runs before serving; this is the rest of the file.
        """
        if self.path == ":memory:" or self._w is None:
            return []
        conns: list[sqlite3.Connection] = []
        cancelled = False

        def run() -> list[str]:
            if cancelled:
                return []
            try:
                conn = self._connect(readonly=True)
            except sqlite3.Error as exc:
                return [f"{type(exc).__name__}: {exc}"]
            conns.append(conn)
            try:
                return full_check(conn)
            except sqlite3.Error as exc:
                return [] if cancelled else [f"{type(exc).__name__}: {exc}"]
            finally:
                conn.close()

        job = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            found = await asyncio.shield(job)
        except asyncio.CancelledError:
            cancelled = True
            for conn in conns:
                conn.interrupt()  # thread-safe: the check stops at its next step
            with contextlib.suppress(Exception):
                await job  # the thread ends before the caller closes the store
            raise
        for line in found:
            log.error("store: damage in %s found after start: %s", self.path, line)
        self.damage += [f for f in found if f not in self.damage]
        return found

    async def ping(self) -> None:
        """A no-op round trip through the writer thread (the watchdog's proof it is not stuck)."""

        def fn() -> None:
            if self._w is None:
                raise StoreUnavailable("store_closed", "the database is not open")
            self._w.execute("SELECT 1").fetchone()

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes (after a purge)."""

        def fn() -> None:
            if self._w is None:
                return
            busy, _, _ = self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.warning("store: WAL checkpoint after purge was blocked by a reader; it is retried later")

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pool, attr in ((self._reader_pool, "_r"), (self._writer_pool, "_w")):
            conn: sqlite3.Connection | None = getattr(self, attr)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    await loop.run_in_executor(pool, conn.close)
                setattr(self, attr, None)
        self._reader_pool.shutdown(wait=True)
        self._writer_pool.shutdown(wait=True)

    # ---- generic access ---------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, after: Callable[[], None] | None = None) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer thread; then ``after`` (same thread)."""

        def run() -> T:
            conn = self._w
            if conn is None:
                raise StoreUnavailable("store_closed", "the database is not open")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                    self.last_error = None
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self.write_errors += 1
                self.last_error = str(exc)
                log.error("store: write failed: %s", exc)
                raise _classify(exc) from exc
            if after is not None:
                after()
            return result

        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, run)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = self._r
            if conn is None:
                raise StoreUnavailable("store_closed", "the database is not open")
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise _classify(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, run)

    # ---- backup ---------------------------------------------------------------------------

    async def backup(self, target: str) -> None:
        """SQLite's online backup: a consistent copy while the daemon keeps writing."""

        def fn() -> None:
            assert self._w is not None
            private_file(target)
            dest = sqlite3.connect(target)
            try:
                self._w.backup(dest)
            finally:
                dest.close()
            tighten(target)

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)


def split_sql(script: str) -> list[str]:
    """Split a migration into statements, as SQLite itself would parse them.

    Lines are accumulated until :func:`sqlite3.complete_statement` says the buffer is a
    whole statement, so a ``;`` at the end of a line inside a string literal, or inside a
    trigger body (``BEGIN ... END;``), does not cut a statement short.
    """
    statements: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        if not buf and (not line.strip() or line.strip().startswith("--")):
            continue
        buf.append(line)
        text = "\n".join(buf)
        if sqlite3.complete_statement(text):
            statements.append(text.strip())
            buf = []
    if buf:  # a last statement without its ";" (buf starts with a line of SQL, never a comment)
        statements.append("\n".join(buf).strip())
    return statements


def backup_file(source: str, target: str) -> None:
    """``hallctl backup``: SQLite's online backup from another process (the daemon may run; no lock).

    The copy holds names and ID numbers: it is created 0600 whatever the umask.
    """
    if not Path(source).is_file():
        raise StoreUnavailable("store_path", f"no database at {source}")
    try:
        private_file(target)
    except OSError as exc:
        raise path_error(target, exc) from exc
    src = sqlite3.connect(source)
    src.execute("PRAGMA busy_timeout = 5000")
    dest = sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()
    tighten(target)
