"""Item 9: the daemon speaks systemd's notify protocol to a real datagram socket.

READY=1 once it serves; WATCHDOG=1 at WATCHDOG_USEC/4 while the loop and the store's writer
answer; no ping while the process is stopped (SIGSTOP stands in for a stuck loop), pings again
after SIGCONT; STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.core_helpers import REPO, free_port
from tests.hostile.integrity_helpers import daemon

WATCHDOG_USEC = 400_000  # pings every 0.1 s


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"@hallctl-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    try:
        yield sock, name
    finally:
        sock.close()


def next_message(sock: socket.socket, want: str, timeout: float) -> list[str]:
    """Messages received until one contains ``want`` (bounded); raises if it never comes."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            break
        seen.append(msg)
        if want in msg.split("\n"):
            return seen
    raise AssertionError(f"no {want} within {timeout}s; got {seen}")


def quiet_for(sock: socket.socket, seconds: float) -> list[str]:
    """Everything that arrives within ``seconds`` (expected: nothing)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    for _ in range(10_000):
        try:
            sock.recv(4096)
        except BlockingIOError:
            break
    sock.setblocking(True)


def test_ready_then_watchdog_pings_stop_when_the_process_is_stopped(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, name = notify_socket
    d = daemon(tmp_path / "hall")
    d.data["api"]["port"] = free_port()
    d.write_config()
    env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.pop("WATCHDOG_PID", None)
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hallctl.cli", "-c", str(d.config_file), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
    try:
        next_message(sock, "READY=1", 30)
        for _ in range(3):
            next_message(sock, "WATCHDOG=1", 2)

        os.kill(proc.pid, signal.SIGSTOP)
        try:
            # Up to one datagram may have been in flight when the signal landed.
            drain(sock)
            assert quiet_for(sock, 4 * WATCHDOG_USEC / 1e6) == [], "pinged while stopped"
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        for _ in range(3):
            next_message(sock, "WATCHDOG=1", 5)

        proc.send_signal(signal.SIGTERM)
        next_message(sock, "STOPPING=1", 10)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
