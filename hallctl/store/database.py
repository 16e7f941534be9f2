"""The database: connections, the writer and reader threads, migrations, backups.

Why these choices: an acknowledged ticket must survive ``kill -9`` and a power
cut, so every commit is fsynced (FULL) before the API answers; WAL lets the
screens and stats read while the writer works. All writes go through one
dedicated thread with its own connection, so the event loop never blocks on
fsync and SQLite never sees two writers.

Group commit: writes that arrive while the writer is busy wait in a queue and
the next batch takes them all (up to ``batch_max``, and no more once a batch has
worked ``batch_max_s``) into one transaction, each inside its own SAVEPOINT, with
one fsynced COMMIT and one high-water write for the batch. A write that fails
rolls back its savepoint only; every caller is answered after the COMMIT
returned, never before, so an answer still means durable. A batch of writes
given as rows (the service's decisions) first runs merged, one multi-row
statement per table (:mod:`hallctl.store.inserts`), and only if that fails write
by write as above.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from hallctl.errors import StoreUnavailable
from hallctl.store.inserts import Row, run_each, run_merged
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


@dataclasses.dataclass(slots=True)
class _Write(Generic[T]):
    """One queued write: its work, the high-water marks it raises, and where its answer goes."""

    fn: Callable[[sqlite3.Connection], T]
    marks: Mapping[tuple[date, str], int] | None
    chain: bool
    loop: asyncio.AbstractEventLoop
    fut: asyncio.Future[T]
    # The write as rows (fn runs them one by one): it only writes SQL, so it may run again after
    # its batch's merged pass is rolled back, and the writer may merge its rows with others'.
    rows: list[Row] | None = None


def _settle(items: list[tuple[_Write[Any], Any, BaseException | None]]) -> None:
    """On the loop: answer the batch's callers in their order (so their events keep the order too)."""
    for w, result, err in items:
        if w.fut.done():
            continue
        if err is None:
            w.fut.set_result(result)
        else:
            w.fut.set_exception(err)


def _answer(items: list[tuple[_Write[Any], Any, BaseException | None]]) -> None:
    """From the writer thread: one wake-up of each loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Write[Any], Any, BaseException | None]]] = {}
    for item in items:
        by_loop.setdefault(item[0].loop, []).append(item)
    for loop, part in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, part)


def _as_unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable("store_error", "数据库写入失败，请稍后重试", f"write failed: {type(exc).__name__}")


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
        # Group commit: writes queue here; the writer thread takes up to ``batch_max`` of them (and
        # stops adding once a batch has worked ``batch_max_s``) into one transaction and one COMMIT.
        self.batch_max = 256
        self.batch_max_s = 0.05
        self._queue: collections.deque[_Write[Any]] = collections.deque()
        self._queue_lock = threading.Lock()
        self._draining = False
        self._closing = False
        self._chain_error: StoreUnavailable | None = None

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
            raise StoreUnavailable("store_error", f"数据库无法启用WAL（{mode}）", f"cannot enable WAL (got {mode})")
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
                # Thread-safe: the check stops at its next step. The thread may have closed the
                # connection a moment ago (it finished as the cancel came): nothing to stop then.
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.interrupt()
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
                raise StoreUnavailable("store_closed", "数据库未打开", "the database is not open")
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
        with self._queue_lock:
            self._closing = True  # queued writes still run (the pool runs its work in order) and are answered
        for pool, attr in ((self._reader_pool, "_r"), (self._writer_pool, "_w")):
            conn: sqlite3.Connection | None = getattr(self, attr)
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    await loop.run_in_executor(pool, conn.close)
                setattr(self, attr, None)
        self._reader_pool.shutdown(wait=True)
        self._writer_pool.shutdown(wait=True)
        if self.high_water is not None:
            self.high_water.close()

    # ---- generic access ---------------------------------------------------------------

    def submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        marks: Mapping[tuple[date, str], int] | None = None,
        chain: bool = False,
        rows: list[Row] | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``fn`` for the writer now; the future is answered once its batch's COMMIT returned.

        Synchronous on purpose: the caller (the service, under its lock) fixes the order of
        its writes by the order of its calls, and awaits the answer after releasing the lock,
        so the next decision can join the same batch. ``marks`` raise the high-water file
        (:class:`HighWater`) after the commit and before any answer. With ``chain``, a write
        queued after a failed chained write fails too (its decision assumed the failed one
        had happened) until :meth:`reset_chain`. ``rows`` is for :meth:`submit_rows`.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        item = _Write(fn, marks, chain, loop, fut, rows)
        with self._queue_lock:
            if self._closing:
                raise StoreUnavailable("store_closed", "数据库未打开", "the database is not open")
            self._queue.append(item)
            if not self._draining:
                self._draining = True
                self._writer_pool.submit(self._drain)
        return fut

    def submit_rows(
        self, rows: list[Row], *, marks: Mapping[tuple[date, str], int] | None = None, chain: bool = False
    ) -> asyncio.Future[None]:
        """:meth:`submit` for a write that is only rows to insert (:mod:`hallctl.store.inserts`).

        A batch made only of such writes runs as one multi-row statement per table, without
        a savepoint per write (see :meth:`_run_batch`).
        """
        return self.submit(functools.partial(run_each, rows=rows), marks=marks, chain=chain, rows=rows)

    async def write_rows(self, rows: list[Row], *, marks: Mapping[tuple[date, str], int] | None = None) -> None:
        """:meth:`write` for rows (:meth:`submit_rows`)."""
        await asyncio.shield(self.submit_rows(rows, marks=marks))

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        marks: Mapping[tuple[date, str], int] | None = None,
    ) -> T:
        """Run ``fn`` inside its own SAVEPOINT of the writer's next group commit; answer after the COMMIT.

        Concurrent writes share one transaction and one fsynced COMMIT (group commit). A
        write that raises rolls back only its own savepoint and only its caller gets the
        error (:class:`StoreUnavailable` for SQLite errors, as before). Nobody is answered
        before the batch is durable.
        """
        return await asyncio.shield(self.submit(fn, marks=marks))

    @property
    def chain_broken(self) -> bool:
        return self._chain_error is not None

    async def reset_chain(self) -> None:
        """After the chain's owner re-read its state: chained writes are accepted again (in writer order)."""

        def fn() -> None:
            self._chain_error = None

        await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn)

    # ---- the writer thread: group commit ------------------------------------------------

    def _drain(self) -> None:
        """One batch, then give the pool's other work (ping, checkpoint, backup) its turn."""
        with self._queue_lock:
            batch = [self._queue.popleft() for _ in range(min(self.batch_max, len(self._queue)))]
            if not batch:
                self._draining = False
                return
        try:
            self._run_batch(batch)
        finally:
            with self._queue_lock:
                left: list[_Write[Any]] = []
                if not self._queue:
                    self._draining = False
                else:
                    try:
                        self._writer_pool.submit(self._drain)
                    except RuntimeError:  # the pool is shut down (close): nobody will run them
                        left = list(self._queue)
                        self._queue.clear()
                        self._draining = False
            if left:
                closed = StoreUnavailable("store_closed", "数据库未打开", "the database is not open")
                _answer([(w, None, closed) for w in left])

    def _run_batch(self, batch: list[_Write[Any]]) -> None:
        """One transaction for the batch, one COMMIT; then the high-water mark; then the answers.

        A batch made only of rows (the service's decisions, :meth:`submit_rows`) first runs
        merged: one multi-row statement per table, no savepoint per write. Each statement the
        writer runs hands the GIL to the event loop and waits to get it back (issue 12: the
        batch's inserts took 3-4 times their CPU time in wall time), so the fewer the better.
        If any of them raises, that pass is rolled back whole and the batch runs again write by
        write, each in its own savepoint, so only the failing write (and, in a chain, those
        queued behind it) fails.
        """
        conn = self._w
        if conn is None:
            err = StoreUnavailable("store_closed", "数据库未打开", "the database is not open")
            _answer([(w, None, err) for w in batch])
            return
        merge = self._chain_error is None and all(w.rows is not None for w in batch)
        if merge and self._merged(conn, batch):
            self._finish(conn, [(w, None, None) for w in batch], [])
            return
        done: list[tuple[_Write[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            err = self._failed(exc)
            failed: list[tuple[_Write[Any], Any, BaseException | None]] = [(w, None, err) for w in batch]
            self._break_chain(failed, err)
            _answer(failed)
            return
        started = time.monotonic()
        rest: list[_Write[Any]] = []
        for i, w in enumerate(batch):
            if w.chain and self._chain_error is not None:
                done.append((w, None, self._chain_error))
                continue
            try:
                conn.execute("SAVEPOINT w")
            except sqlite3.Error:
                rest = batch[i:]  # the transaction cannot take more: commit what it has, the rest next
                break
            try:
                result = w.fn(conn)
                conn.execute("RELEASE w")
                done.append((w, result, None))
            except BaseException as exc:  # noqa: BLE001 - the caller gets it, the batch goes on
                err2: BaseException = self._failed(exc) if isinstance(exc, sqlite3.Error) else exc
                if w.chain:
                    self._chain_error = err2 if isinstance(err2, StoreUnavailable) else _as_unavailable(err2)
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (I/O error, disk full...): the
                    # writes before this one are gone too; the ones after go into the next batch.
                    done = [(d[0], None, err2) for d in done] + [(w, None, err2)]
                    self._break_chain(done, err2)
                    _answer(done)
                    self._requeue(batch[i + 1 :])
                    return
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                done.append((w, None, err2))
            if time.monotonic() - started > self.batch_max_s:
                rest = batch[i + 1 :]
                break
        self._finish(conn, done, rest)

    def _merged(self, conn: sqlite3.Connection, batch: list[_Write[Any]]) -> bool:
        """The batch's rows in one transaction, merged per table; False (rolled back) if any raised."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            run_merged(conn, itertools.chain.from_iterable(w.rows or () for w in batch))
        except BaseException:  # noqa: BLE001 - the pass write by write finds which one and answers it
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return False
        return True

    def _finish(
        self,
        conn: sqlite3.Connection,
        done: list[tuple[_Write[Any], Any, BaseException | None]],
        rest: list[_Write[Any]],
    ) -> None:
        """COMMIT what the batch did, raise the high-water mark, answer; the writes not reached go next."""
        try:
            conn.execute("COMMIT")
            self.last_error = None
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            err = self._failed(exc)
            done = [(w, None, err if e is None else e) for w, _, e in done]
            self._break_chain(done, err)
            _answer(done)
            self._requeue(rest)
            return
        # Durable. The high-water mark covers every number of the batch before anyone hears of them.
        marks: dict[tuple[date, str], int] = {}
        for w, _, e in done:
            if e is None and w.marks:
                for k, n in w.marks.items():
                    marks[k] = max(marks.get(k, 0), n)
        if marks and self.high_water is not None:
            self.high_water.raise_to(marks)
        _answer(done)
        self._requeue(rest)

    def _failed(self, exc: sqlite3.Error) -> StoreUnavailable:
        self.write_errors += 1
        self.last_error = str(exc)
        log.error("store: write failed: %s", exc)
        return _classify(exc)

    def _break_chain(self, done: list[tuple[_Write[Any], Any, BaseException | None]], err: BaseException) -> None:
        if any(w.chain for w, _, _ in done):
            self._chain_error = err if isinstance(err, StoreUnavailable) else _as_unavailable(err)

    def _requeue(self, items: list[_Write[Any]]) -> None:
        """Writes a batch did not reach go first into the next one, in their order."""
        if items:
            with self._queue_lock:
                self._queue.extendleft(reversed(items))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = self._r
            if conn is None:
                raise StoreUnavailable("store_closed", "数据库未打开", "the database is not open")
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
        raise StoreUnavailable("store_path", f"{source}处没有数据库", f"no database at {source}")
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
