"""Item 2: idle and half-sent connections are timed out and capped; accept errors do not flood the log."""

from __future__ import annotations

import resource
import select
import socket
import time
from pathlib import Path

import httpx

from tests.hostile.http_helpers import bearer, connect, running_daemon

HALF_LINE = b"GET /api/v1/hea"  # half a request line, never finished (slowloris)


def _open_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        try:
            s = connect(port, timeout=2)
            s.sendall(HALF_LINE)
            socks.append(s)
        except OSError:
            break  # the server refused or reset: it is protecting itself, which is fine
    return socks


def _closed_by_server(socks: list[socket.socket], deadline_s: float) -> int:
    """How many of ``socks`` the server closed (EOF or reset) before the deadline."""
    open_ = set(socks)
    closed = 0
    end = time.monotonic() + deadline_s
    while open_ and time.monotonic() < end:
        ready, _, _ = select.select(list(open_), [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed += 1
                open_.discard(s)
    return closed


def _issue(url: str, token: str, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    end = t0 + timeout
    while True:
        try:
            r = httpx.post(f"{url}/api/v1/tickets", json={"category": "A"}, headers=bearer(token), timeout=2)
            return r.status_code, time.monotonic() - t0
        except httpx.TransportError:
            if time.monotonic() > end:
                return -1, time.monotonic() - t0
            time.sleep(0.1)  # bounded retry of a refused connection


def test_half_request_lines_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    """300 connections with half a request line: a kiosk still issues at once, the idle ones are closed."""
    api = {"header_timeout_s": 2.0, "max_connections": 100}
    with running_daemon(tmp_path / "d", api=api) as (d, tokens):
        log_before = d.log.stat().st_size
        socks = _open_idle(d.port, 300)
        try:
            status, took = _issue(d.url, tokens["kiosk"], timeout=10)
            assert status == 201 and took < 3, (status, took)
            # every idle connection is closed: by the cap (oldest first) or by the header timeout
            closed = _closed_by_server(socks, deadline_s=15)
            assert closed == len(socks), f"{len(socks) - closed} of {len(socks)} idle connections still open"
        finally:
            for s in socks:
                s.close()
        assert d.log.stat().st_size - log_before < 8 * 1024


def test_out_of_file_descriptors_logs_a_line_and_recovers(tmp_path: Path) -> None:
    """The daemon out of file descriptors: accept errors take a line per interval, service resumes."""
    api = {"header_timeout_s": 2.0, "max_connections": 5000}
    with running_daemon(tmp_path / "d", api=api) as (d, tokens):
        assert d.proc is not None
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (160, hard))
        log_before = d.log.stat().st_size
        socks = _open_idle(d.port, 300)  # the backlog accepts them; the daemon runs out of descriptors
        try:
            status, took = _issue(d.url, tokens["kiosk"], timeout=15)
            assert status == 201, (status, took)
            assert took < 10, took
            closed = _closed_by_server(socks, deadline_s=15)
            assert closed == len(socks), f"{len(socks) - closed} of {len(socks)} idle connections still open"
        finally:
            for s in socks:
                s.close()
        grew = d.log.stat().st_size - log_before
        assert grew < 8 * 1024, f"log grew {grew} bytes:\n{d.log.read_text()[-3000:]}"
