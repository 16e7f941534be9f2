"""A newcomer's first commands: `hallctl demo` on a port of their choice, `hallctl simulate` finding it.

Each test runs the real CLI as a process, the way the README's commands do.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.core_helpers import REPO, config_dict, free_port, to_toml

HALLCTL = [sys.executable, "-m", "hallctl.cli"]


def demo_file(tmp_path: Path) -> Path:
    """A hall of its own (simulated ID reader and printer at one kiosk), with an [api] port the test overrides."""
    data = config_dict(
        store={"path": str(tmp_path / "hall.db")},
        api={"host": "127.0.0.1", "port": 8780, "rate_limit": {"enabled": False}},
        kiosk=[{"id": "k1", "floor": 1, "categories": ["A"], "reader": "idr-k1", "printer": "prn-k1"}],
        device=[
            {"id": "idr-k1", "kind": "idcard", "simulate": True},
            {"id": "prn-k1", "kind": "printer", "simulate": True},
        ],
    )
    path = tmp_path / "hall.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


class DemoProcess:
    """`hallctl demo …` as a child; its banner read until "Press Ctrl+C"."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*HALLCTL, "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        self.banner: list[str] = []

    def wait_banner(self, timeout: float = 30) -> list[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("demo exited before serving:\n" + "".join(self.banner))
            self.banner.append(line)
            if line.startswith("Press Ctrl+C"):
                return self.banner
        raise AssertionError("no banner within the deadline:\n" + "".join(self.banner))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=15)


@pytest.fixture
def demos() -> Iterator[list[DemoProcess]]:
    started: list[DemoProcess] = []
    yield started
    for d in started:
        d.stop()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HALLCTL, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_demo_with_a_config_file_serves_on_the_port_asked_for(tmp_path: Path, demos: list[DemoProcess]) -> None:
    port = free_port()
    data = tmp_path / "state"
    demo = DemoProcess("-c", str(demo_file(tmp_path)), "--port", str(port), "--data", str(data))
    demos.append(demo)
    banner = "".join(demo.wait_banner())
    assert f"http://127.0.0.1:{port}/" in banner
    # The admin console has a login to try, printed with its address.
    console = next(line for line in demo.banner if line.lstrip().startswith("console:"))
    assert f"http://127.0.0.1:{port}/admin  (account demo, password " in console
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
    # The banner's simulate hint names this demo's state directory, and works as printed.
    hint = next(line for line in demo.banner if line.lstrip().startswith("simulate:"))
    assert f"--data {data}" in hint
    swipe = run("simulate", "swipe", "k1", "--card", "1", "--data", str(data))
    assert swipe.returncode == 0, swipe.stderr
    assert json.loads(swipe.stdout)["kiosk"] == "k1"
    assert json.loads((data / "demo.json").read_text())["url"] == f"http://127.0.0.1:{port}"

    assert demo.stop() == 0
    assert not (data / "demo.json").exists()  # a stopped demo is not found any more
    gone = run("simulate", "swipe", "k1", "--data", str(data))
    assert gone.returncode == 2 and "no demo is running" in gone.stderr


def test_a_taken_port_is_one_line_not_a_traceback(tmp_path: Path, demos: list[DemoProcess]) -> None:
    port = free_port()
    first = DemoProcess("-c", str(demo_file(tmp_path)), "--port", str(port), "--data", str(tmp_path / "a"))
    demos.append(first)
    first.wait_banner()
    (tmp_path / "b").mkdir()
    second = run("-c", str(demo_file(tmp_path / "b")), "demo", "--port", str(port), "--data", str(tmp_path / "b"))
    assert second.returncode == 1
    err = [line for line in second.stderr.splitlines() if line.strip()]
    assert err == [
        f"hallctl: 127.0.0.1:{port} is already in use (another hallctl or demo?); "
        "choose another port with [api] port or --port"
    ]
    # The first demo is untouched.
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
    # The daemon itself says the same, after its start-up log lines, without a traceback; exit 1 lets
    # systemd retry (the process holding the port may be on its way out).
    taken = demo_file(tmp_path / "b")
    taken.write_text(taken.read_text(encoding="utf-8").replace("port = 8780", f"port = {port}"), encoding="utf-8")
    daemon = run("-c", str(taken), "run")
    assert daemon.returncode == 1
    assert "Traceback" not in daemon.stderr
    assert daemon.stderr.splitlines()[-1].startswith(f"hallctl: 127.0.0.1:{port} is already in use")

    # A second demo on another port but the same database: one line that says what to do.
    same_db = run("-c", str(demo_file(tmp_path)), "demo", "--port", str(free_port()), "--data", str(tmp_path / "c"))
    assert same_db.returncode == 2 and "Traceback" not in same_db.stderr
    assert "in use by another hallctl daemon" in same_db.stderr and "--data var/demo2" in same_db.stderr
