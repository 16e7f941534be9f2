"""Helpers for the integrity and systemd hostile tests: daemons as processes on one database."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.core.core_helpers import REPO, Daemon

DEADLINE_S = 30.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def daemon(workdir: Path, store: dict[str, Any] | None = None, **over: Any) -> Daemon:
    """A :class:`Daemon` whose ``[store]`` section is updated with ``store`` (path, on_damage...)."""
    d = Daemon(workdir, **over)
    d.data["store"].update(store or {})
    return d


async def started(workdir: Path, store: dict[str, Any] | None = None, **over: Any) -> tuple[Daemon, dict[str, str]]:
    """A daemon process with a kiosk and an admin token, serving."""
    d = daemon(workdir, store, **over)
    tokens = await d.create_tokens({"kiosk": ("kiosk", ()), "admin": ("admin", ())})
    d.start()
    return d, tokens


def issue(d: Daemon, token: str, n: int, category: str = "A") -> list[dict[str, Any]]:
    """``n`` acknowledged issues (every one answered 201), in order."""
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=d.url, timeout=10) as c:
        for _ in range(n):
            resp = c.post("/api/v1/tickets", json={"category": category}, headers=bearer(token))
            assert resp.status_code == 201, resp.text
            out.append(resp.json())
    return out


def rows(db: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def run_to_exit(d: Daemon, timeout: float = DEADLINE_S) -> subprocess.CompletedProcess[str]:
    """``hallctl run`` on ``d``'s config, expected to stop by itself (refusal); killed at the deadline."""
    d.write_config()
    try:
        return subprocess.run(
            [sys.executable, "-m", "hallctl.cli", "-c", str(d.config_file), "run"],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the daemon did not exit within {timeout}s (it started?): {exc.stderr!r}") from exc


def wait_for(condition: Any, what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll ``condition()`` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # bounded poll of an external process
    raise AssertionError(f"timed out waiting for {what}")


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)
