"""Item 1: request bodies are limited while they stream, before parsing and before the token check."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.hostile.http_helpers import bearer, connect, proc_status, running_daemon

MB = 1024 * 1024


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else -1


def _stream(port: int, head: bytes, chunks: int, chunk: bytes, deadline_s: float) -> tuple[bytes, float]:
    """Send ``head`` then up to ``chunks`` chunked-encoding chunks; a reader thread collects the answer."""
    sock = connect(port)
    got: list[bytes] = []

    def read() -> None:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                got.append(data)
        except OSError:
            return

    reader = threading.Thread(target=read, daemon=True)
    t0 = time.monotonic()
    try:
        sock.sendall(head)
        reader.start()
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range(chunks):
            if not reader.is_alive() or time.monotonic() - t0 > deadline_s:
                break
            sock.sendall(frame)
    except OSError:
        pass  # the server closed the connection after answering
    reader.join(timeout=deadline_s)
    sock.close()
    return b"".join(got), time.monotonic() - t0


def test_declared_huge_body_is_refused_before_the_token_check(tmp_path: Path) -> None:
    """Content-Length: 50 MB without a token: 413 body_too_large at once, without sending a byte of it."""
    with running_daemon(tmp_path / "d") as (d, _tokens):
        sock = connect(d.port)
        t0 = time.monotonic()
        sock.sendall(
            b"POST /api/v1/tickets HTTP/1.1\r\nHost: hall\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        sock.settimeout(5)
        raw = b""
        try:
            while b"\r\n\r\n" not in raw:
                data = sock.recv(65536)
                if not data:
                    break
                raw += data
        except TimeoutError:
            pass
        sock.close()
        assert _status(raw) == 413, raw[:200]
        assert time.monotonic() - t0 < 5
        assert b"application/problem+json" in raw


def test_streamed_huge_body_is_cut_off_and_memory_stays_flat(tmp_path: Path) -> None:
    """50 MB chunked, with and without a token: 413 quickly, the daemon's peak RSS grows < 20 MB."""
    with running_daemon(tmp_path / "d") as (d, tokens):
        assert d.proc is not None
        pid = d.proc.pid
        before = proc_status(pid, "VmHWM")
        chunk = b"[" * (256 * 1024)
        for auth in (b"", f"Authorization: Bearer {tokens['kiosk']}\r\n".encode()):
            head = (
                b"POST /api/v1/tickets HTTP/1.1\r\nHost: hall\r\nContent-Type: application/json\r\n"
                + auth
                + b"Transfer-Encoding: chunked\r\n\r\n"
            )
            raw, took = _stream(d.port, head, chunks=200, chunk=chunk, deadline_s=20)
            assert _status(raw) == 413, raw[:200]
            assert took < 10
            headers, _, body = raw.partition(b"\r\n\r\n")
            assert b"application/problem+json" in headers and json.loads(body)["code"] == "body_too_large"
        grew_mb = (proc_status(pid, "VmHWM") - before) / 1024
        assert grew_mb < 20, f"peak RSS grew {grew_mb:.1f} MB"
        # the hall still serves, and a normal body passes
        r = httpx.post(f"{d.url}/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"]))
        assert r.status_code == 201


def test_body_just_over_the_limit_is_refused(tmp_path: Path) -> None:
    """A body just over the limit (64 KiB + 1) is refused with problem+json; one under it is parsed."""
    with running_daemon(tmp_path / "d") as (d, tokens), httpx.Client(base_url=d.url, timeout=10) as c:
        c.headers.update(bearer(tokens["kiosk"]))
        big = json.dumps({"category": "A", "kiosk": "x" * 65536}).encode()
        r = c.post("/api/v1/tickets", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "body_too_large"
        small = json.dumps({"category": "A", "kiosk": "x" * 100}).encode()
        r = c.post("/api/v1/tickets", content=small, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_arguments"
