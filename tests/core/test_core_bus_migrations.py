"""Small guarantees: the bus keeps a bounded record of handler failures; migrations split as SQLite parses."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from hallctl import events as ev
from hallctl.bus import HANDLER_ERRORS_KEPT, Bus
from hallctl.store import split_sql


async def test_a_handler_failing_on_every_event_keeps_the_bus_bounded(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()

    def broken(e: ev.Event) -> None:
        raise ValueError(f"cannot draw {e.wire_name}")

    sub = bus.subscribe("broken-screen", broken)
    n = HANDLER_ERRORS_KEPT + 50
    with caplog.at_level("CRITICAL"):  # every failure is logged; not needed here
        for i in range(n):
            bus.publish(ev.Alert(at=datetime.now(UTC), alert="x", severity="info", message=str(i), subject="s"))
        await bus.drain()
    assert sub.errors == n  # every failure is counted...
    assert len(bus.handler_errors) == HANDLER_ERRORS_KEPT  # ...but only the latest are kept
    assert str(bus.handler_errors[-1][1]) == "cannot draw alert"
    await bus.close()


MIGRATION = """-- Schema 9: a table, a default row whose text has ";" at line ends, and a trigger.
CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL -- shown on the screens; keep it short;
);

INSERT INTO notices (id, body) VALUES (1, '请排队;
按号就座;
谢谢');
CREATE TRIGGER notices_touch AFTER UPDATE ON notices
BEGIN
    UPDATE notices SET body = body || ';' WHERE id = NEW.id AND 0;
END;
-- trailing comment
"""


def test_split_sql_keeps_semicolons_inside_strings_and_triggers() -> None:
    statements = split_sql(MIGRATION)
    assert len(statements) == 3
    assert statements[1].startswith("INSERT INTO notices") and statements[1].endswith("谢谢');")
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")
    conn = sqlite3.connect(":memory:")
    for s in statements:
        conn.execute(s)  # each is one whole statement: sqlite3 refuses more than one per execute
    assert conn.execute("SELECT body FROM notices").fetchone()[0] == "请排队;\n按号就座;\n谢谢"
    conn.close()


def test_split_sql_keeps_a_last_statement_without_semicolon() -> None:
    assert split_sql("CREATE TABLE a (x);\nCREATE TABLE b (y)\n") == ["CREATE TABLE a (x);", "CREATE TABLE b (y)"]
