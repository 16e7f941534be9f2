"""``hallctl admin ...`` and ``hallctl audit ...``: accounts and the audit log from the shell.

Run on the hall's machine with the daemon's config (the database is shared; SQLite's WAL
lets the daemon keep running). The password is prompted for (never echoed) or read from
stdin with ``--password-stdin``; it is never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from hallctl.admin.accounts import ADMIN_ROLES, AdminConsole
from hallctl.admin.audit import audit_text
from hallctl.config import Config
from hallctl.errors import HallctlError
from hallctl.store import Store

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


async def _with_console(cfg: Config, fn: Callable[[AdminConsole], Awaitable[T]]) -> T:
    store = Store(cfg.store.path, busy_timeout_ms=cfg.store.busy_timeout_ms)
    await store.open()
    try:
        return await fn(AdminConsole(cfg, store, _now))
    finally:
        await store.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 Password: ")
    if getpass.getpass("再次输入 Again: ") != first:
        raise SystemExit("hallctl: the passwords differ")
    return first


def cmd_admin(args: argparse.Namespace, cfg: Config) -> int:
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.admin_cmd == "add":
            password = _password(args)
            acc = asyncio.run(_with_console(cfg, lambda c: c.add_account(args.name, args.role, password, actor)))
            print(f"created {acc['name']} ({acc['role']})")
        elif args.admin_cmd == "list":
            for a in asyncio.run(_with_console(cfg, lambda c: c.accounts())):
                print(
                    f"{a['name']}\t{a['role']}\ttotp={'on' if a['totp_enabled'] else 'off'}\t{a['locked_until'] or ''}"
                )
        elif args.admin_cmd == "unlock":
            asyncio.run(_with_console(cfg, lambda c: c.unlock(args.name, actor)))
            print(f"unlocked {args.name}")
    except HallctlError as exc:
        print(f"hallctl: {exc.message_en}", file=sys.stderr)
        return 2
    return 0


def cmd_audit(args: argparse.Namespace, cfg: Config) -> int:
    if args.audit_cmd == "verify":
        checked, bad, reason = asyncio.run(_with_console(cfg, lambda c: c.store.verify_audit()))
        if bad is not None:
            print(f"audit log BROKEN at row {bad}: {reason} ({checked} rows read)")
            return 1
        print(f"audit log OK: {checked} rows, chain intact")
        return 0
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=cfg.hall.tz)

    async def export(c: AdminConsole) -> list[dict[str, Any]]:
        rows = [r.to_dict() for r in await c.store.audit_rows(since=since)]
        await c.store.audit(_now(), f"cli:{getpass.getuser()}", "audit.export", "audit_log", None, {"rows": len(rows)})
        return rows

    rows = asyncio.run(_with_console(cfg, export))
    text = audit_text(rows, args.format)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(rows)} rows written to {args.output}")
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser, load: Callable[[str], Config]) -> None:
    """Register ``admin`` and ``audit`` on the CLI's subparsers (``sub.add_parser`` adds -c/-v)."""
    adm = sub.add_parser("admin", help="admin console accounts")
    asub = adm.add_subparsers(dest="admin_cmd", required=True)
    add = asub.add_parser("add", parents=[common], help="create an account (prompts for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ADMIN_ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    asub.add_parser("list", parents=[common])
    un = asub.add_parser("unlock", parents=[common], help="lift a lockout after failed logins")
    un.add_argument("name")
    adm.set_defaults(func=lambda a: cmd_admin(a, load(a.config)))

    aud = sub.add_parser("audit", help="the hash-chained audit log")
    dsub = aud.add_subparsers(dest="audit_cmd", required=True)
    dsub.add_parser("verify", parents=[common], help="check the hash chain; names the first bad row")
    ex = dsub.add_parser("export", parents=[common], help="write the rows as CSV or JSON Lines")
    ex.add_argument("--since", help="ISO date or time (hall's time zone when none is given)")
    ex.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    ex.add_argument("-o", "--output", required=True, help="file, or - for stdout")
    aud.set_defaults(func=lambda a: cmd_audit(a, load(a.config)))
