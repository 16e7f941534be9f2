"""Hostile: call by number respects the window's categories and transfers (issue 10, item 15).

Window 1 serves A. Calling C001 (another category) or an A ticket transferred to window 3
is refused (409 ``not_for_this_window``), so by-qr scoping never opens for window 1 through
it; an admin may override, and the override is logged with who.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hallctl import engine
from hallctl.errors import Conflict
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import T0, Daemon, make_config


def test_engine_refuses_a_ticket_not_for_the_window() -> None:
    h = EngineHall(make_config(), T0)
    c1 = h.issue("C")
    a1 = h.issue("A")
    with pytest.raises(Conflict) as exc:
        h.call(1, c1.number)  # window 1 serves A only
    assert exc.value.code == "not_for_this_window"
    assert h.call(2, c1.number).window == 2  # window 2 serves A and C
    # An A ticket transferred to window 3 is window 3's, although window 1 serves A.
    assert h.call(2, a1.number).id == a1.id
    moved = h.transfer(2, to_window=3)
    assert moved.target_window == 3
    with pytest.raises(Conflict) as exc:
        h.call(1, moved.number)
    assert exc.value.code == "not_for_this_window"
    assert h.call(3, moved.number).window == 3


def test_engine_admin_override_is_logged() -> None:
    h = EngineHall(make_config(), T0)
    c1 = h.issue("C")
    d = engine.call_ticket(h.q, h.cfg, 1, c1.number, h.now, override_by="token 7 hall admin")
    h.q.apply(d)
    assert d.result.window == 1
    rows = [r for r in d.log if r.kind == "call_override"]
    assert len(rows) == 1 and rows[0].data["by"] == "token 7 hall admin" and rows[0].window == 1


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    d = Daemon(tmp_path / "d")
    tokens = await d.create_tokens(
        {"admin": ("admin", ()), "guide": ("guide", ()), "w1": ("window", (1,)), "w2": ("window", (2,))}
    )
    d.start()
    try:
        async with httpx.AsyncClient(base_url=d.url, timeout=20) as c:
            yield c, {k: f"Bearer {v}" for k, v in tokens.items()}
    finally:
        d.stop()


async def test_call_by_number_over_http_is_for_the_window_unless_an_admin_overrides(
    hall: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, auth = hall

    def h(who: str) -> dict[str, str]:
        return {"Authorization": auth[who]}

    c1 = (await c.post("/api/v1/tickets", json={"category": "C"}, headers=h("guide"))).json()
    refused = await c.post("/api/v1/windows/1/call", json={"number": c1["number"]}, headers=h("w1"))
    assert refused.status_code == 409 and refused.json()["code"] == "not_for_this_window"
    # The refused call opened nothing: the ticket still waits and window 1 may not read its holder.
    assert (await c.get(f"/api/v1/tickets/{c1['id']}", headers=h("w1"))).json()["state"] == "waiting"
    by_qr = await c.get(f"/api/v1/tickets/by-qr/{c1['qr']}", headers=h("w1"))
    assert by_qr.status_code == 403 and by_qr.json()["code"] == "wrong_window"
    # A clerk cannot override.
    forced = await c.post("/api/v1/windows/1/call", json={"number": c1["number"], "override": True}, headers=h("w1"))
    assert forced.status_code == 403 and forced.json()["code"] == "override_admin_only"
    # An admin can, and the event log says who.
    ok = await c.post("/api/v1/windows/1/call", json={"number": c1["number"], "override": True}, headers=h("admin"))
    assert ok.status_code == 200 and ok.json()["ticket"]["window"] == 1
    history = (await c.get(f"/api/v1/tickets/{c1['id']}", headers=h("admin"))).json()["events"]
    overrides = [e for e in history if e["kind"] == "call_override"]
    assert len(overrides) == 1 and "token" in overrides[0]["data"]["by"], overrides
    # Window 2 serves A: it may call A002 by number.
    a2 = (await c.post("/api/v1/tickets", json={"category": "A"}, headers=h("guide"))).json()
    assert (await c.post("/api/v1/windows/2/call", json={"number": a2["number"]}, headers=h("w2"))).status_code == 200
