"""Item 7: per-token rate limits with 429 rate_limited and Retry-After; one kiosk never starves another."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.hostile.http_helpers import bearer, running_daemon

LIMITED = {"rate_limit": {"enabled": True}}  # the defaults: a kiosk issues 2/s, 10 at once


async def _burst(url: str, token: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, headers=bearer(token), timeout=20) as c:
        return await asyncio.gather(*(c.post("/api/v1/tickets", json={"category": "A"}) for _ in range(n)))


def test_one_kiosk_flooding_issues_gets_429_and_another_kiosk_still_issues(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "d", api=LIMITED) as (d, tokens):
        resps = asyncio.run(_burst(d.url, tokens["kiosk"], 100))
        codes = [r.status_code for r in resps]
        assert 1 <= codes.count(201) <= 12, codes  # the burst of 10 (plus what refilled meanwhile)
        assert codes.count(429) >= 85, codes
        limited = next(r for r in resps if r.status_code == 429)
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 5
        # another kiosk's token is not affected
        other = httpx.post(f"{d.url}/api/v1/tickets", json={"category": "A"}, headers=bearer(tokens["kiosk2"]))
        assert other.status_code == 201
        # no ticket was issued for a refused request
        admin = httpx.get(f"{d.url}/api/v1/tickets", headers=bearer(tokens["admin"]))
        assert len(admin.json()) == codes.count(201) + 1


def test_evaluations_are_limited_per_token(tmp_path: Path) -> None:
    """A window token posting evaluations in a loop is refused after its burst (5)."""
    with running_daemon(tmp_path / "d", api=LIMITED) as (d, tokens):
        with httpx.Client(base_url=d.url, headers=bearer(tokens["w1"]), timeout=10) as c:
            codes = [c.post("/api/v1/windows/1/evaluation", json={"level": 5}).status_code for _ in range(20)]
        assert 429 in codes and codes.index(429) <= 6, codes
