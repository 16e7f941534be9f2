"""The demo hall runs from its own config file, so a newcomer's console edits work and stay.

The built-in demo (no ``-c``) writes ``<data>/hallctl.toml`` at its first run and runs from
it; the console's edit is written there and is still in force after the demo restarts.
(In tests/devices: the built-in demo starts pcscd for its simulated badge reader.)
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.core.core_helpers import free_port
from tests.core.test_core_demo_cli import DemoProcess


def test_console_edit_in_the_demo_is_written_to_its_file_and_survives_a_restart(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "demo"
    demo = DemoProcess("--port", str(port), "--data", str(data))
    try:
        banner = "".join(demo.wait_banner())
        path = data / "hallctl.toml"
        assert f"config:    {path}" in banner
        password = re.search(r"\(account demo, password (\S+)\)", banner)
        assert password is not None, banner
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as c:
            r = c.post("/api/v1/admin/login", json={"name": "demo", "password": password.group(1)})
            assert r.status_code == 200, r.text
            csrf = {"X-CSRF-Token": c.cookies.get("hallctl_csrf") or ""}
            r = c.put("/api/v1/admin/config/window/1", json={"name": "1号窗口 综合受理"}, headers=csrf)
            assert r.status_code == 200, r.text
        assert 'name = "1号窗口 综合受理"' in path.read_text(encoding="utf-8")
        assert "# hallctl: the demo hall" in path.read_text(encoding="utf-8")  # the shipped file's comments kept
    finally:
        assert demo.stop() == 0

    again = DemoProcess("--port", str(port), "--data", str(data))
    try:
        again.wait_banner()
        windows = httpx.get(f"http://127.0.0.1:{port}/api/v1/windows", timeout=10)
        assert windows.status_code in (200, 401)
        token = (data / "tokens.json").read_text(encoding="utf-8")
        admin = re.search(r'"admin":\s*"([^"]+)"', token)
        assert admin is not None
        windows = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/windows", headers={"Authorization": f"Bearer {admin.group(1)}"}, timeout=10
        )
        assert windows.status_code == 200, windows.text
        assert next(w for w in windows.json() if w["window"] == 1)["name"] == "1号窗口 综合受理"
    finally:
        assert again.stop() == 0
