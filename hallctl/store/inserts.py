"""Writes given as rows: many decisions' rows of one table go in one multi-row INSERT.

Why: the writer thread releases the GIL inside every statement it runs and then waits
for the event loop to hand it back. Under a busy hall's load each such round trip
costs more than the statement (issue 12: a batch's inserts took 3-4 times their CPU
time in wall time, and the switches cost both threads CPU). A decision written as
rows instead of a function lets the writer run a whole batch of decisions as one
statement per table: three statements for 32 kiosk tickets instead of 96.

Merging reorders statements only *between* tables, never within one: a batch runs its
rows grouped by :attr:`Insert.rank` (tables that others reference first), each group in
the batch's order, so a ticket issued and then called in the same batch ends as
called, and the event log keeps the decisions' order. Within one decision the rows
are already in rank order (``Store._decision_rows`` builds them so).
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

# Rows per statement at most. Statements are cached per size by sqlite3 (128 by default);
# sizes are powers of two up to this, so a table needs at most 7 prepared statements.
MAX_ROWS_PER_STATEMENT = 64


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Insert:
    """An INSERT the writer may run for many rows at once: ``{head} VALUES (?,..),(?,..) {tail}``.

    Compared by identity (``eq=False``): each is a module constant, and the writer groups a
    batch's rows by it, so its hash must be cheap.
    """

    rank: int  # order among a batch's tables: a table that others reference goes first
    head: str  # "INSERT INTO tickets (id, day, ...)" or "INSERT OR REPLACE INTO holders (...)"
    width: int  # values per row
    tail: str = ""  # " ON CONFLICT(id) DO UPDATE SET ..." (SQLite applies it row by row)

    def sql(self, rows: int = 1) -> str:
        return _sql(self, rows)


# One row of a write: the statement and its values.
Row = tuple[Insert, Sequence[Any]]

_SQL: dict[tuple[Insert, int], str] = {}


def _sql(ins: Insert, rows: int) -> str:
    key = (ins, rows)
    text = _SQL.get(key)
    if text is None:
        one = "(" + ",".join("?" * ins.width) + ")"
        text = _SQL[key] = f"{ins.head} VALUES {','.join([one] * rows)}{ins.tail}"
    return text


def run_each(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    """One statement per row, in the write's own order (the careful pass: a write on its own)."""
    for ins, values in rows:
        conn.execute(ins.sql(), values)


def run_merged(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    """All rows of a batch, one multi-row statement per table and size."""
    groups: dict[Insert, list[Sequence[Any]]] = {}
    for ins, values in rows:
        group = groups.get(ins)
        if group is None:
            groups[ins] = [values]
        else:
            group.append(values)
    for ins in sorted(groups, key=lambda i: i.rank):
        group = groups[ins]
        at, left = 0, len(group)
        while left:
            size = min(MAX_ROWS_PER_STATEMENT, 1 << (left.bit_length() - 1))  # the largest power of two
            conn.execute(ins.sql(size), list(itertools.chain.from_iterable(group[at : at + size])))
            at += size
            left -= size
