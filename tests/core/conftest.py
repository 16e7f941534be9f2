"""Fixtures for the hall-core tests: fake clock, in-process hall, daemon as a process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hallctl import auth
from hallctl.daemon import Hall
from tests.core.core_helpers import Daemon, FakeClock, LiveHall, make_config, merge


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


HallFactory = Callable[..., Any]


@pytest.fixture
async def hall_factory(tmp_path: Path) -> AsyncIterator[HallFactory]:
    """Start halls in this event loop on port 0; every one is stopped at teardown."""
    started: list[LiveHall] = []

    async def make(clock: Callable[[], datetime] | None = None, **over: Any) -> LiveHall:
        n = len(started)
        over = merge({"store": {"path": str(tmp_path / f"hall{n}.db")}}, over)
        cfg = make_config(**over)
        hall = Hall(cfg, clock=clock or FakeClock(), state_dir=tmp_path / f"state{n}")
        await hall.start()
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20)
        live = LiveHall(hall, client)
        started.append(live)
        for role in ("admin", "kiosk", "display", "guide"):
            live.tokens[role] = await auth.create_token(hall.store, role)
        for w in cfg.window:
            live.tokens[f"w{w.number}"] = await auth.create_token(hall.store, "window", (w.number,))
            live.tokens[f"p{w.number}"] = await auth.create_token(hall.store, "pad", (w.number,))
        return live

    yield make
    for live in reversed(started):
        await live.client.aclose()
        await live.hall.stop()


@pytest.fixture
async def live(hall_factory: HallFactory, clock: FakeClock) -> LiveHall:
    """The base test hall, started in-process with the fake clock."""
    result: LiveHall = await hall_factory(clock=clock)
    return result


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(**over: Any) -> Daemon:
        d = Daemon(tmp_path / f"daemon{len(made)}", **over)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
