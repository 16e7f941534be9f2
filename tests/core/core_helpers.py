"""Helpers for the hall-core tests: config builder, fake clock, TOML writer, daemon process."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from hallctl import auth, config
from hallctl.config import Config
from hallctl.daemon import Hall
from hallctl.service import HallService
from hallctl.store import Store

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday, 09:00 in the hall's time zone.
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)

BASE: dict[str, Any] = {
    "hall": {"id": "test", "name": "测试政务服务中心"},
    # Core tests drive the hall as fast as they can; the rate limits have their own tests (tests/hostile).
    "api": {"host": "127.0.0.1", "port": 0, "rate_limit": {"enabled": False}},
    "mqtt": {"embedded_port": 0, "discovery": False},
    # Tests recall at once; the gap between recalls has its own test (test_core_engine.py). They call
    # without a staff member signed in and call next over a called ticket (counted as done, the old
    # behaviour); both policies have their own tests (test_core_window_policy.py).
    "queue": {"recall_min_gap_s": 0, "require_sign_in": False, "call_next_unstarted": "finish"},
    "category": [
        {"prefix": "A", "name": "便民服务", "name_en": "Citizen", "target_wait_minutes": 10},
        {"prefix": "B", "name": "法人服务", "name_en": "Company", "target_wait_minutes": 15},
        {"prefix": "C", "name": "公安户政", "name_en": "Police", "target_wait_minutes": 20},
    ],
    "window": [
        {"number": 1, "categories": ["A"]},
        {"number": 2, "categories": ["A", "C"]},
        {"number": 3, "categories": ["B", "A"]},
    ],
    "staff": [{"id": "0231", "name": "李明"}],
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def config_dict(**over: Any) -> dict[str, Any]:
    """The base test hall with sections merged in (``queue={...}`` merges, ``window=[...]`` replaces)."""
    return merge(BASE, over)


def make_config(**over: Any) -> Config:
    return config.parse(config_dict(**over))


class FakeClock:
    """An injected clock: time passes only when the test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.astimezone(UTC)


# ---- TOML writing (the config files the daemon reads) -------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table ([api] rate_limit = {enabled = false})
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for hall configs: tables, arrays of tables, scalars and lists."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
        else:
            lines.insert(0, f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- in-process hall ----------------------------------------------------------------------


@dataclass
class LiveHall:
    hall: Hall
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def svc(self) -> HallService:
        return self.hall.service

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


# ---- the daemon as a separate process ------------------------------------------------------


def spawn_until_healthy(
    args: list[str], log: Path, url: str, timeout: float, what: str, stop: Callable[[], None]
) -> subprocess.Popen[bytes]:
    """``python -m hallctl.cli ARGS`` as a child logging to ``log``, returned once ``url``'s health answers 200.

    Raises (after ``stop``) when it exits or is not healthy within ``timeout``.
    """
    with log.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hallctl.cli", *args], stdout=logf, stderr=subprocess.STDOUT, cwd=REPO
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # bounded readiness poll of an external process
    proc.terminate()
    proc.wait(10)
    stop()
    raise RuntimeError(f"{what} not healthy within {timeout}s:\n{log.read_text()}")


class Daemon:
    """``python -m hallctl.cli -c FILE run`` with a free port; restartable on the same database."""

    def __init__(self, workdir: Path, **over: Any) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = config_dict(store={"path": str(workdir / "hallctl.db")}, **over)
        self.config_file = workdir / "hallctl.toml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = workdir / "daemon.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.write_config()
        return subprocess.run(
            [sys.executable, "-m", "hallctl.cli", "-c", str(self.config_file), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    def write_config(self) -> None:
        self.config_file.write_text(to_toml(self.data), encoding="utf-8")

    async def create_tokens(self, specs: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, str]:
        """Create tokens straight in the database (before start: faster than one CLI call each)."""
        store = Store(self.data["store"]["path"])
        await store.open()
        try:
            return {name: await auth.create_token(store, role, windows) for name, (role, windows) in specs.items()}
        finally:
            await store.close()

    def start(self, timeout: float = 30) -> None:
        self.port = free_port()
        self.data["api"]["port"] = self.port
        self.write_config()
        self.proc = spawn_until_healthy(
            ["-c", str(self.config_file), "run"], self.log, self.url, timeout, "daemon", self.stop
        )

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
