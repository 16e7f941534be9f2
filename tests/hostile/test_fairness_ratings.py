"""Hostile: ratings come only from the visitor's side (issue 10, item 14).

A clerk's window token must not rate its own ticket (and so pre-empt the visitor's rating on
the pad): 403 ``rating_from_visitor_only``. A pad token is scoped to its window: pad 1 rates
window 1's ticket, never window 2's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.core.core_helpers import Daemon


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    d = Daemon(tmp_path / "d")
    tokens = await d.create_tokens(
        {
            "guide": ("guide", ()),
            "w1": ("window", (1,)),
            "w2": ("window", (2,)),
            "p1": ("pad", (1,)),
            "p2": ("pad", (2,)),
        }
    )
    d.start()
    try:
        async with httpx.AsyncClient(base_url=d.url, timeout=20) as c:
            yield c, {k: f"Bearer {v}" for k, v in tokens.items()}
    finally:
        d.stop()


async def test_a_window_cannot_rate_and_a_pad_rates_only_its_window(
    hall: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    c, auth = hall

    def h(who: str) -> dict[str, str]:
        return {"Authorization": auth[who]}

    served: dict[int, str] = {}
    for window in (1, 2):
        t = (await c.post("/api/v1/tickets", json={"category": "A"}, headers=h("guide"))).json()
        assert (await c.post(f"/api/v1/windows/{window}/call-next", headers=h(f"w{window}"))).status_code == 200
        assert (await c.post(f"/api/v1/windows/{window}/finish", headers=h(f"w{window}"))).status_code == 200
        served[window] = t["id"]

    # The clerk of window 1 tries to rate its own ticket, both ways.
    for path in ("/api/v1/windows/1/evaluation", f"/api/v1/tickets/{served[1]}/evaluation"):
        resp = await c.post(path, json={"level": 5}, headers=h("w1"))
        assert resp.status_code == 403 and resp.json()["code"] == "rating_from_visitor_only", resp.text
    # Pad 2 may not rate window 1's ticket.
    for path in ("/api/v1/windows/1/evaluation", f"/api/v1/tickets/{served[1]}/evaluation"):
        resp = await c.post(path, json={"level": 5}, headers=h("p2"))
        assert resp.status_code == 403 and resp.json()["code"] == "wrong_window", resp.text
    # A pad is no clerk.
    assert (await c.post("/api/v1/windows/1/call-next", headers=h("p1"))).status_code == 403
    # The clerk may ask for the rating instead (the pad asks again).
    asked = await c.post("/api/v1/windows/1/request-evaluation", headers=h("w1"))
    assert asked.status_code == 200 and asked.json()["ticket"]["id"] == served[1], asked.text
    # The visitor's rating on pad 1 is the one recorded.
    ok = await c.post("/api/v1/windows/1/evaluation", json={"level": 1}, headers=h("p1"))
    assert ok.status_code == 201 and ok.json()["evaluation"]["ticket_id"] == served[1], ok.text
    assert ok.json()["evaluation"]["level"] == 1
    ok2 = await c.post(f"/api/v1/tickets/{served[2]}/evaluation", json={"level": 4}, headers=h("p2"))
    assert ok2.status_code == 201 and ok2.json()["evaluation"]["window"] == 2, ok2.text
    again = await c.post("/api/v1/windows/1/request-evaluation", headers=h("w1"))
    assert again.status_code == 409 and again.json()["code"] == "already_evaluated", again.text
