"""Helpers for the hostile HTTP tests: a daemon process with tokens, raw sockets, the daemon's memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.core.core_helpers import Daemon

TOKENS: dict[str, tuple[str, tuple[int, ...]]] = {
    "admin": ("admin", ()),
    "kiosk": ("kiosk", ()),
    "kiosk2": ("kiosk", ()),
    "w1": ("window", (1,)),
    "display": ("display", ()),
}


@contextmanager
def running_daemon(workdir: Path, **over: Any) -> Iterator[tuple[Daemon, dict[str, str]]]:
    """A daemon process on a free port with the tokens of :data:`TOKENS`; stopped at the end."""
    d = Daemon(workdir, **over)
    tokens = asyncio.run(d.create_tokens(TOKENS))
    d.start()
    try:
        yield d, tokens
    finally:
        d.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)
