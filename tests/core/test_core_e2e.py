"""End to end: the daemon as a separate process (`python -m hallctl.cli -c FILE run`)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hallctl import auth
from hallctl.store import Store
from tests.core.core_helpers import REPO, Daemon, config_dict, to_toml

pytestmark = pytest.mark.e2e
DaemonFactory = Callable[..., Daemon]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(d: Daemon, n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=d.url, timeout=60, limits=httpx.Limits(max_connections=n, max_keepalive_connections=n)
    )


async def all_tickets(c: httpx.AsyncClient, token: str, category: str) -> list[dict[str, Any]]:
    resp = await c.get("/api/v1/tickets", params={"category": category, "limit": 5000}, headers=bearer(token))
    assert resp.status_code == 200
    rows: list[dict[str, Any]] = resp.json()
    return rows


async def test_500_concurrent_issues_give_500_distinct_numbers(daemon_factory: DaemonFactory) -> None:
    """500 concurrent POST /tickets against the daemon give A001..A500: distinct, no gap."""
    d = daemon_factory()
    tokens = await d.create_tokens({"kiosk": ("kiosk", ()), "admin": ("admin", ())})
    d.start()
    async with client(d, 500) as c:
        resps = await asyncio.gather(
            *(c.post("/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"])) for _ in range(500))
        )
        assert [r.status_code for r in resps] == [201] * 500
        numbers = [r.json()["number"] for r in resps]
        assert sorted(numbers) == [f"A{i:03d}" for i in range(1, 501)]
    # A fresh connection: the 500 pooled ones may have idled past uvicorn's keep-alive timeout.
    async with client(d, 1) as c:
        stored = await all_tickets(c, tokens["admin"], "A")
        assert sorted(t["number"] for t in stored) == sorted(numbers)


async def test_100_concurrent_call_next_from_20_windows(daemon_factory: DaemonFactory) -> None:
    """100 concurrent call-next requests from 20 windows never call one ticket twice."""
    windows = [{"number": n, "categories": ["A"]} for n in range(1, 21)]
    d = daemon_factory(window=windows)
    specs: dict[str, tuple[str, tuple[int, ...]]] = {"kiosk": ("kiosk", ()), "admin": ("admin", ())}
    specs |= {f"w{n}": ("window", (n,)) for n in range(1, 21)}
    tokens = await d.create_tokens(specs)
    d.start()
    async with client(d, 100) as c:
        for _ in range(100):
            resp = await c.post("/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"]))
            assert resp.status_code == 201

        async def call(n: int) -> httpx.Response:
            return await c.post(f"/api/v1/windows/{n}/call-next", headers=bearer(tokens[f"w{n}"]))

        resps = await asyncio.gather(*(call(n) for n in range(1, 21) for _ in range(5)))
        assert {r.status_code for r in resps} == {200}
        called = [r.json()["ticket"]["id"] for r in resps]
        assert len(called) == len(set(called)) == 100, "a ticket was called twice"
    async with client(d, 1) as c:
        stored = await all_tickets(c, tokens["admin"], "A")
        states = sorted(t["state"] for t in stored)
        assert states == ["called"] * 20 + ["done"] * 80
        current = [t["window"] for t in stored if t["state"] == "called"]
        assert sorted(current) == list(range(1, 21))  # one current ticket per window


async def test_kill9_during_burst_loses_no_acknowledged_ticket(daemon_factory: DaemonFactory) -> None:
    """kill -9 mid-burst: every ticket whose 201 arrived survives with its number; numbering continues."""
    d = daemon_factory()
    tokens = await d.create_tokens({"kiosk": ("kiosk", ()), "admin": ("admin", ())})
    d.start()
    acked: dict[str, str] = {}
    killed = asyncio.Event()

    async with client(d, 32) as c:

        async def worker() -> None:
            while True:
                try:
                    resp = await c.post("/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"]))
                except httpx.TransportError:
                    return
                if resp.status_code != 201:
                    return
                body = resp.json()
                acked[body["id"]] = body["number"]
                if len(acked) >= 150 and not killed.is_set():
                    killed.set()
                    d.kill9()  # while the other 31 requests are in flight
                if killed.is_set():
                    return

        async with asyncio.timeout(120):
            await asyncio.gather(*(worker() for _ in range(32)))
    assert killed.is_set() and len(acked) >= 150
    d.start()
    async with client(d, 4) as c:
        stored = {t["id"]: t for t in await all_tickets(c, tokens["admin"], "A")}
        for tid, number in acked.items():
            assert tid in stored, f"acknowledged ticket {number} lost"
            assert stored[tid]["number"] == number
        seqs = sorted(int(t["number"][1:]) for t in stored.values())
        assert seqs == list(range(1, len(seqs) + 1)), "gap or repeat in stored numbers"
        nxt = await c.post("/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk"]))
        assert nxt.status_code == 201 and nxt.json()["number"] == f"A{len(seqs) + 1:03d}"


# ---- configuration and command line ---------------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown_key": ({"hall": {"id": "t", "name": "t", "colour": "red"}}, "hall.colour"),
    "wrong_type": ({"api": {"host": "127.0.0.1", "port": "eighty"}}, "api.port"),
    "duplicate_window": (
        {"window": [{"number": 1, "categories": ["A"]}, {"number": 1, "categories": ["B"]}]},
        "window[1].number",
    ),
    "prefix_clash": (
        {
            "category": [{"prefix": "A", "name": "a"}, {"prefix": "A", "name": "b"}],
            "window": [{"number": 1, "categories": ["A"]}],
        },
        "category[1].prefix",
    ),
    "unknown_category": ({"window": [{"number": 1, "categories": ["A", "Q"]}]}, "window[0].categories[1]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_daemon_refuses_bad_config_naming_the_key(case: str, tmp_path: Path) -> None:
    """a bad config file stops `hallctl run` with exit code 2 and names the offending key."""
    over, key = BAD_CONFIGS[case]
    data = config_dict(store={"path": str(tmp_path / "h.db")}, **over)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(to_toml(data), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "hallctl.cli", "-c", str(cfg), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr
    assert not (tmp_path / "h.db").exists(), "the daemon touched the database with a bad config"


def test_token_create_prints_only_the_token(daemon_factory: DaemonFactory) -> None:
    """`hallctl token create --role window --window 3` prints the token alone; it authenticates as window 3."""
    d = daemon_factory()
    proc = d.cli("token", "create", "--role", "window", "--window", "3")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"hct_[A-Za-z0-9_-]{20,}\n", proc.stdout), repr(proc.stdout)
    token = proc.stdout.strip()

    async def check() -> auth.Principal:
        store = Store(d.data["store"]["path"])
        await store.open()
        try:
            return await auth.Authenticator(store).authenticate(token)
        finally:
            await store.close()

    p = asyncio.run(check())
    assert p.role == "window" and p.windows == (3,)
    stored = subprocess.run(
        ["sqlite3", d.data["store"]["path"], "SELECT hash FROM tokens"], capture_output=True, text=True, check=False
    )
    if stored.returncode == 0:
        assert token not in stored.stdout  # stored hashed


CONFIG_FILES = sorted((REPO / "config").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIG_FILES or [None], ids=[p.name for p in CONFIG_FILES] or ["none"])
def test_shipped_configs_pass_check_config(path: Path | None) -> None:
    """every config/*.toml passes `hallctl check-config`."""
    if path is None:
        pytest.skip("no config/*.toml shipped yet")
    proc = subprocess.run(
        [sys.executable, "-m", "hallctl.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_check_config_rejects_bad_file(tmp_path: Path) -> None:
    """`hallctl check-config` exits 2 on an invalid file, naming key and value."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(to_toml(config_dict(queue={"max_recalls": -1})), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "hallctl.cli", "check-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "queue.max_recalls = -1" in proc.stderr
