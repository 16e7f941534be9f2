"""Hostile: a swipe's offer reaches only that kiosk's streams and only its token redeems it (item 13).

A swipe at kiosk k1 publishes ``card_read`` with an ``offer`` that issues a ticket in the card
holder's name. A window token, a display token and kiosk k2's token must not see the offer on
their streams, and must not redeem it (403 ``wrong_kiosk``), so the visitor at k1 still can.
A ``kiosk_notice`` (it can name a ticket) goes only to that kiosk's streams too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from hallctl import auth
from hallctl.store import Store
from tests.core.core_helpers import Daemon
from tests.hostile.stream_clients import SseClient

OFFER = re.compile(rb'"offer": ?"([^"]+)"')  # compact or spaced JSON


async def make_tokens(d: Daemon) -> dict[str, str]:
    store = Store(d.data["store"]["path"])
    await store.open()
    try:
        return {
            "admin": await auth.create_token(store, "admin"),
            "k1": await auth.create_token(store, "kiosk", kiosks=("k1",)),
            "k2": await auth.create_token(store, "kiosk", kiosks=("k2",)),
            "w1": await auth.create_token(store, "window", (1,)),
            "display": await auth.create_token(store, "display"),
        }
    finally:
        await store.close()


def card_reads(raw: bytes) -> list[dict[str, object]]:
    out = []
    for m in re.finditer(rb"event: card_read\ndata: (.*)\n", raw):
        out.append(json.loads(m.group(1)))
    return out


async def test_an_offer_goes_only_to_its_kiosk_and_only_its_token_redeems_it(tmp_path: Path) -> None:
    d = Daemon(
        tmp_path / "d",
        queue={"per_id_daily_limit": 1, "card_dedupe_seconds": 0},
        kiosk=[
            {"id": "k1", "categories": ["A", "B"], "reader": "idr-k1"},
            {"id": "k2", "categories": ["A", "B"], "reader": "idr-k2"},
        ],
        device=[
            {"id": "idr-k1", "kind": "idcard", "simulate": True},
            {"id": "idr-k2", "kind": "idcard", "simulate": True},
        ],
    )
    tokens = await make_tokens(d)
    d.start()
    streams: dict[str, SseClient] = {}
    try:
        for who in ("admin", "k1", "k2", "w1", "display"):
            streams[who] = await SseClient.open(d.port, tokens[who])
            await streams[who].ready()
        async with httpx.AsyncClient(base_url=d.url, timeout=20) as c:

            def h(who: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {tokens[who]}"}

            swipe = await c.post("/api/v1/sim/kiosk/k1/swipe", json={"card": "1"}, headers=h("admin"))
            assert swipe.status_code == 200, swipe.text
            assert await streams["k1"].until(b"event: card_read\n")
            offer = card_reads(streams["k1"].buf)[0]["offer"]
            assert isinstance(offer, str) and offer
            # Everything published after the swipe: when the marker arrived, the swipe's events had too.
            mark = await c.post("/api/v1/displays/led1/show", json={"text": "marker-1"}, headers=h("admin"))
            assert mark.status_code == 200
            for who, s in streams.items():
                assert await s.until(b'"text":"marker-1"'), who
            assert OFFER.search(streams["admin"].buf)
            for who in ("k2", "w1", "display"):
                assert not OFFER.search(streams[who].buf), f"the offer leaked to the {who} stream"
                assert all("offer" not in e for e in card_reads(streams[who].buf))

            # Other tokens cannot redeem it, and the offer stays the visitor's.
            for who in ("w1", "k2"):
                resp = await c.post("/api/v1/tickets", json={"category": "A", "offer": offer}, headers=h(who))
                assert resp.status_code == 403 and resp.json()["code"] == "wrong_kiosk", (who, resp.text)
            mine = await c.post("/api/v1/tickets", json={"category": "A", "offer": offer}, headers=h("k1"))
            assert mine.status_code == 201, mine.text
            assert mine.json()["kiosk"] == "k1"

            # The same card again: refused by the per-ID limit; the notice goes to k1's streams only.
            for s in streams.values():
                s.buf = b""
            await c.post("/api/v1/sim/kiosk/k1/remove", headers=h("admin"))
            swipe = await c.post("/api/v1/sim/kiosk/k1/swipe", json={"card": "1"}, headers=h("admin"))
            assert swipe.status_code == 200, swipe.text
            assert await streams["k1"].until(b"event: card_read\n")
            offer = card_reads(streams["k1"].buf)[0]["offer"]
            again = await c.post("/api/v1/tickets", json={"category": "A", "offer": offer}, headers=h("k1"))
            assert again.status_code == 422 and again.json()["code"] == "id_limit_reached", again.text
            assert await streams["k1"].until(b"event: kiosk_notice\n")
            mark = await c.post("/api/v1/displays/led1/show", json={"text": "marker-2"}, headers=h("admin"))
            assert mark.status_code == 200
            for who, s in streams.items():
                assert await s.until(b'"text":"marker-2"'), who
            assert b"event: kiosk_notice\n" in streams["admin"].buf
            for who in ("k2", "w1", "display"):
                assert b"event: kiosk_notice\n" not in streams[who].buf, f"kiosk k1's notice reached {who}"
    finally:
        for s in streams.values():
            s.close()
        d.stop()
