"""Architecture rules that import-linter (``[tool.importlinter]`` in pyproject.toml) cannot express.

* Only the store holds SQL: outside ``hallctl/store/`` no module contains an SQL string
  (a literal that starts with SELECT, INSERT INTO, UPDATE ... SET, DELETE FROM, CREATE
  TABLE, PRAGMA ...), calls ``.execute``/``.executemany``/``.executescript``, or imports
  ``sqlite3``. The migrations (``hallctl/store/migrations/*.sql``) are SQL files, not modules.
* Nothing outside ``hallctl/service/`` and ``hallctl/engine/`` reads the service's queue
  (``.q`` or ``._q``, the engine's live tables): sinks read through the service's queries.
* Retention is listed once: the store's ``purge_*`` methods are called only from
  ``hallctl/service/retention.py``, which the daemon's hourly pass and ``hallctl purge`` both run
  (two lists had drifted: the CLI's had lost the audit log).

Each check is a pure function of a module's source, and is itself tested on a violating
snippet, so a rule that silently stopped matching would fail here too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hallctl", "kiosk_ui", "drivers")

_SQL = re.compile(
    r"""^\s*(
        SELECT\s | INSERT\s+(OR\s+\w+\s+)?INTO\s | REPLACE\s+INTO\s | UPDATE\s+\w+\s+SET\s | DELETE\s+FROM\s
        | CREATE\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER|VIEW)\s | DROP\s+(TABLE|INDEX|TRIGGER|VIEW)\s | ALTER\s+TABLE\s
        | PRAGMA\s | BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED|TRANSACTION))?\s*$ | COMMIT\s*$ | ROLLBACK\s*$ | VACUUM\b
    )""",
    re.VERBOSE,
)
_EXECUTE = {"execute", "executemany", "executescript"}
# The city's central (a separate process with its own PostgreSQL, docs/city.md) has one store module of its own.
CENTRAL_STORE = "hallctl/central/store.py"
_QUEUE_ATTRS = {"q", "_q"}


def _modules(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py") if "vendor" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _string_starts(node: ast.AST) -> str | None:
    """The leading text of a string literal or f-string, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def sql_uses(source: str) -> list[str]:
    """Where ``source`` holds SQL: ``line: what`` for each SQL literal, execute call and sqlite3 import."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        text = _string_starts(node)
        if text is not None and _SQL.match(text):
            found.append(f"{getattr(node, 'lineno', 0)}: SQL string {text.strip()[:40]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _EXECUTE:
            found.append(f"{node.lineno}: .{node.func.attr}(...) call")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names):
            found.append(f"{node.lineno}: import sqlite3")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            found.append(f"{node.lineno}: from sqlite3 import ...")
    return found


def queue_reads(source: str) -> list[str]:
    """Where ``source`` reaches the service's live queue: ``line: .q`` / ``line: ._q``."""
    return [
        f"{node.lineno}: .{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in _QUEUE_ATTRS
    ]


def purge_calls(source: str) -> list[str]:
    """Where ``source`` calls a store purge: ``line: .purge_x(...)``."""
    return [
        f"{node.lineno}: .{node.func.attr}(...)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("purge_")
    ]


# ---- the rules, on the code ----------------------------------------------------------------------


def test_only_the_store_holds_sql() -> None:
    offenders = {
        _rel(p): uses
        for p in _modules(*PACKAGES)
        if not _rel(p).startswith(("hallctl/store/", CENTRAL_STORE))
        and (uses := sql_uses(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "SQL outside hallctl/store/: give the Store a typed method instead"


def test_the_store_is_where_the_sql_is() -> None:
    """The rule above would pass vacuously if the checker matched nothing: the store must trip it."""
    assert sql_uses((REPO / "hallctl/store/__init__.py").read_text(encoding="utf-8"))
    assert sql_uses((REPO / "hallctl/store/database.py").read_text(encoding="utf-8"))
    assert sql_uses((REPO / CENTRAL_STORE).read_text(encoding="utf-8"))


def test_nothing_outside_the_service_reads_its_queue() -> None:
    offenders = {
        _rel(p): reads
        for p in _modules("hallctl", "kiosk_ui")
        if not _rel(p).startswith(("hallctl/service/", "hallctl/engine/"))
        and (reads := queue_reads(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "read hall state through the service's queries, not its engine tables"


RETENTION = "hallctl/service/retention.py"


def test_retention_is_listed_once() -> None:
    offenders = {
        _rel(p): calls
        for p in _modules("hallctl", "kiosk_ui")
        if _rel(p) != RETENTION
        and not _rel(p).startswith(("hallctl/store/", CENTRAL_STORE))
        and (calls := purge_calls(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"add the retention period to {RETENTION}: the daemon and `hallctl purge` both run it"
    assert purge_calls((REPO / RETENTION).read_text(encoding="utf-8"))  # the rule is not vacuous


# ---- the checkers catch violations ------------------------------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        'rows = conn.execute("SELECT id FROM tokens").fetchall()',
        "store.read(lambda c: c.executemany(sql, rows))",
        'SQL = "INSERT INTO outbox (topic) VALUES (?)"',
        'q = f"UPDATE tokens SET revoked_at = {now}"',
        'S = """\n    DELETE FROM outbox WHERE seq <= ?"""',
        'X = "CREATE TABLE t (a INTEGER)"',
        'X = "PRAGMA user_version"',
        "import sqlite3",
        "from sqlite3 import Connection",
    ],
)
def test_sql_checker_catches(snippet: str) -> None:
    assert sql_uses(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        '"""Select a category; the kiosk prints the ticket."""',
        'msg = "Update available"',
        'label = "Created at"',
        'log.info("deleted %d rows", n)',
        "store.outbox_peek(10)",
    ],
)
def test_sql_checker_leaves_prose_alone(snippet: str) -> None:
    assert sql_uses(snippet) == []


def test_queue_checker_catches() -> None:
    assert queue_reads("n = len(svc.q.waiting())") == ["1: .q"]
    assert queue_reads("t = request.app.state.service._q.tickets[i]") == ["1: ._q"]
    assert queue_reads("n = svc.queue_state('A').waiting; qr = svc.qr") == []


def test_purge_checker_catches() -> None:
    assert purge_calls("n = await store.purge_sensor_minutes(cutoff)") == ["1: .purge_sensor_minutes(...)"]
    assert purge_calls("await svc.purge(); retention.purge(store, cfg, now)") == []
