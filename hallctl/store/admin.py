"""The admin console's tables: accounts and the hash-chained audit log (schema 10).

The chain: each audit row stores ``hash = sha256(prev_hash + canonical(row))`` where
``canonical`` is the row's fields as sorted, compact JSON. A row is appended inside the
writer's transaction, reading the previous hash on the same connection, so two appends
can never share a predecessor. :func:`verify_chain` recomputes every hash and names the
first row that does not match; a row edited or deleted by hand breaks the chain there.
Retention deletes the oldest rows; the first remaining row's ``prev_hash`` is then the
anchor (the purge itself is an audit row, so a gap at the start is explained).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hallctl.store.database import Database as _Base
else:
    _Base = object

GENESIS = "0" * 64


@dataclasses.dataclass(frozen=True, slots=True)
class AdminAccount:
    id: int
    name: str
    role: str
    password_hash: str
    totp_secret: str | None
    totp_enabled: bool
    failures: int
    locked_until: str | None
    created_at: str
    disabled_at: str | None

    def public(self) -> dict[str, Any]:
        """What the console lists: never the hash or the TOTP secret."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "totp_enabled": self.totp_enabled,
            "locked_until": self.locked_until,
            "created_at": self.created_at,
            "disabled": self.disabled_at is not None,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: str
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def canonical(at: str, actor: str, action: str, target: str, before: str | None, after: str | None) -> str:
    """The text a row's hash covers (before/after as stored: canonical JSON text or null)."""
    return json.dumps(
        {"at": at, "actor": actor, "action": action, "target": target, "before": before, "after": after},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chain_hash(prev_hash: str, row_text: str) -> str:
    return hashlib.sha256((prev_hash + row_text).encode("utf-8")).hexdigest()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _account(r: sqlite3.Row) -> AdminAccount:
    return AdminAccount(
        id=r["id"],
        name=r["name"],
        role=r["role"],
        password_hash=r["password_hash"],
        totp_secret=r["totp_secret"],
        totp_enabled=bool(r["totp_enabled"]),
        failures=r["failures"],
        locked_until=r["locked_until"],
        created_at=r["created_at"],
        disabled_at=r["disabled_at"],
    )


def _audit(r: sqlite3.Row) -> AuditRow:
    return AuditRow(
        seq=r["seq"],
        at=r["at"],
        actor=r["actor"],
        action=r["action"],
        target=r["target"],
        before=json.loads(r["before"]) if r["before"] is not None else None,
        after=json.loads(r["after"]) if r["after"] is not None else None,
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


def append_audit(
    conn: sqlite3.Connection, at: datetime, actor: str, action: str, target: str, before: Any, after: Any
) -> int:
    """Append one chained row on the writer's connection (inside its transaction)."""
    last = conn.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    prev = last[0] if last else GENESIS
    b, a = _json(before), _json(after)
    stamp = at.isoformat()
    h = chain_hash(prev, canonical(stamp, actor, action, target, b, a))
    cur = conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, before, after, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
        (stamp, actor, action, target, b, a, prev, h),
    )
    return int(cur.lastrowid or 0)


def verify_rows(rows: Iterator[sqlite3.Row]) -> tuple[int, int | None, str]:
    """(rows checked, first bad seq or None, reason) over raw rows in ``seq`` order."""
    prev: str | None = None
    n = 0
    for r in rows:
        n += 1
        if prev is not None and r["prev_hash"] != prev:
            return n, int(r["seq"]), "prev_hash does not match the previous row (a row was removed or altered)"
        text = canonical(r["at"], r["actor"], r["action"], r["target"], r["before"], r["after"])
        if chain_hash(r["prev_hash"], text) != r["hash"]:
            return n, int(r["seq"]), "hash does not match the row's content (the row was edited)"
        prev = r["hash"]
    return n, None, ""


class AdminTables(_Base):
    """Typed methods over the admin tables; :class:`hallctl.store.Store` inherits them (its SQL stays here)."""

    # ---- accounts ------------------------------------------------------------------------

    async def admin_account(self, name: str) -> AdminAccount | None:
        def fn(conn: sqlite3.Connection) -> AdminAccount | None:
            r = conn.execute("SELECT * FROM admin_accounts WHERE name = ?", (name,)).fetchone()
            return _account(r) if r else None

        result: AdminAccount | None = await self.read(fn)
        return result

    async def admin_accounts(self) -> list[AdminAccount]:
        def fn(conn: sqlite3.Connection) -> list[AdminAccount]:
            return [_account(r) for r in conn.execute("SELECT * FROM admin_accounts ORDER BY id")]

        result: list[AdminAccount] = await self.read(fn)
        return result

    async def insert_admin_account(
        self, name: str, role: str, password_hash: str, at: datetime, actor: str
    ) -> AdminAccount:
        """Create an account and its audit row in one transaction (a clash is :class:`sqlite3.IntegrityError`)."""

        def fn(conn: sqlite3.Connection) -> AdminAccount:
            conn.execute(
                "INSERT INTO admin_accounts (name, role, password_hash, created_at) VALUES (?,?,?,?)",
                (name, role, password_hash, at.isoformat()),
            )
            r = conn.execute("SELECT * FROM admin_accounts WHERE name = ?", (name,)).fetchone()
            acc = _account(r)
            append_audit(conn, at, actor, "account.create", f"account:{name}", None, {"name": name, "role": role})
            return acc

        result: AdminAccount = await self.write(fn)
        return result

    async def update_admin_account(
        self, name: str, fields: dict[str, Any], audit: tuple[datetime, str, str, Any, Any] | None = None
    ) -> None:
        """Set columns of one account; with ``audit`` (at, actor, action, before, after) also append its row."""
        allowed = {"role", "password_hash", "totp_secret", "totp_enabled", "failures", "locked_until", "disabled_at"}
        cols = [c for c in fields if c in allowed]
        if len(cols) != len(fields):
            raise ValueError(f"unknown account fields {sorted(set(fields) - allowed)}")

        def fn(conn: sqlite3.Connection) -> None:
            if cols:
                sets = ",".join(f"{c} = ?" for c in cols)
                conn.execute(f"UPDATE admin_accounts SET {sets} WHERE name = ?", (*[fields[c] for c in cols], name))
            if audit is not None:
                at, actor, action, before, after = audit
                append_audit(conn, at, actor, action, f"account:{name}", before, after)

        await self.write(fn)

    # ---- audit ----------------------------------------------------------------------------

    async def audit(
        self, at: datetime, actor: str, action: str, target: str, before: Any = None, after: Any = None
    ) -> int:
        result: int = await self.write(lambda conn: append_audit(conn, at, actor, action, target, before, after))
        return result

    async def audit_rows(
        self, since: datetime | None = None, limit: int | None = None, newest_first: bool = False
    ) -> list[AuditRow]:
        def fn(conn: sqlite3.Connection) -> list[AuditRow]:
            sql = "SELECT * FROM audit_log"
            args: list[Any] = []
            if since is not None:
                sql += " WHERE at >= ?"
                args.append(since.isoformat())
            sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            return [_audit(r) for r in conn.execute(sql, args)]

        result: list[AuditRow] = await self.read(fn)
        return result

    async def verify_audit(self) -> tuple[int, int | None, str]:
        """(rows checked, first bad seq or None, reason)."""

        def fn(conn: sqlite3.Connection) -> tuple[int, int | None, str]:
            return verify_rows(iter(conn.execute("SELECT * FROM audit_log ORDER BY seq")))

        result: tuple[int, int | None, str] = await self.read(fn)
        return result

    async def purge_audit(self, cutoff: datetime, at: datetime) -> int:
        """Delete audit rows older than ``cutoff`` and record the purge as a row of its own."""

        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute("DELETE FROM audit_log WHERE at < ?", (cutoff.isoformat(),))
            n = cur.rowcount
            if n:
                append_audit(
                    conn, at, "system", "audit.purge", "audit_log", None, {"deleted": n, "before": str(cutoff)}
                )
            return n

        result: int = await self.write(fn)
        return result
