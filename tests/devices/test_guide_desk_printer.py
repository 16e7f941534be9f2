"""The guide desk's own ticket printer (``[guide] kiosk``), and which kiosk a ticket may name.

A visitor helped at the guide desk (导办台) leaves it with a paper ticket like everyone else:
the desk's ticket is printed by the real ESC/POS driver into the desk printer's simulator,
not at a kiosk across the hall. A kiosk token may print only at its own kiosks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hallctl import auth, config
from hallctl import events as ev
from hallctl.daemon import Hall
from tests.devices.test_hall_devices import Watch, client, device_state, hall_config, zbar


@pytest.fixture
async def desk_hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(hall_config(tmp_path, keep_kinds=("idcard", "printer")), state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_guide_ticket_prints_at_the_desk_printer(desk_hall: Hall) -> None:
    hall = desk_hall
    assert hall.cfg.guide.kiosk == "desk"  # the demo hall's desk entry: the test proves nothing without it
    watch = Watch(hall)
    for dev in ("prn-desk", "prn-k1"):
        await device_state(watch, hall, dev, "ok")
    guide = await client(hall, "guide")
    r = await guide.post("/api/v1/tickets", json={"category": "A", "priority": "green", "priority_reason": "elderly"})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["kiosk"] == "desk" and answer["channel"] == "guide"
    desk, k1 = hall.sims["prn-desk"], hall.sims["prn-k1"]
    await desk.wait_tickets(1)
    slip = desk.tickets[0]
    assert answer["number"] in slip.text_lines
    assert zbar(Path(slip.png_path)) == answer["qr"]
    assert k1.tickets == []  # nothing came out at the kiosk by the door

    # A reprint from the desk goes to the desk's printer again, by default.
    r = await guide.post(f"/api/v1/tickets/{answer['id']}/reprint", json={})
    assert r.status_code == 202, r.text
    await desk.wait_tickets(2)
    assert k1.tickets == []

    # The desk may still print at a kiosk it names (a visitor waiting there).
    r = await guide.post("/api/v1/tickets", json={"category": "B", "kiosk": "k1"})
    assert r.status_code == 201, r.text
    await k1.wait_tickets(1)
    assert r.json()["number"] in k1.tickets[0].text_lines
    await guide.aclose()


async def test_a_kiosk_token_prints_only_at_its_own_kiosks(desk_hall: Hall) -> None:
    hall = desk_hall
    token = await auth.create_token(hall.store, "kiosk", kiosks=("k1",))
    k1 = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{hall.api.port}", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )
    watch = Watch(hall)
    r = await k1.post("/api/v1/tickets", json={"category": "D", "kiosk": "k2"})
    assert r.status_code == 403 and r.json()["code"] == "wrong_kiosk", r.text
    r = await k1.post("/api/v1/tickets", json={"category": "A", "kiosk": "k9"})
    assert r.status_code == 404 and r.json()["code"] == "unknown_kiosk", r.text
    assert not [e for e in watch.events if isinstance(e, ev.TicketIssued)]  # refused before any ticket
    r = await k1.post("/api/v1/tickets", json={"category": "A", "kiosk": "k1"})
    assert r.status_code == 201, r.text
    await k1.aclose()


def test_guide_kiosk_must_be_a_kiosk_with_a_printer(tmp_path: Path) -> None:
    raw = hall_config(tmp_path).model_dump(mode="json")
    raw["guide"]["kiosk"] = "nowhere"
    with pytest.raises(config.ConfigError) as exc:
        config.parse(raw)
    assert "guide.kiosk = 'nowhere': no [[kiosk]] with this id" in str(exc.value)
    raw["guide"]["kiosk"] = "k1"
    raw["kiosk"] = [{**k, "printer": None} if k["id"] == "k1" else k for k in raw["kiosk"]]
    with pytest.raises(config.ConfigError) as exc:
        config.parse(raw)
    assert "guide.kiosk = 'k1': that kiosk has no printer" in str(exc.value)
