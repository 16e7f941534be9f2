"""Two demos on one machine: each gets its own virtual badge reader, and neither stops the other's pcscd.

Debian's pcscd has one fixed socket and vpcd two fixed reader ports, so demos must share
them (hallctl/simulation/readers.py). These tests run two demo halls side by side against
the real pcscd and vpcd, and drive the badge through the simulator API as
`hallctl simulate badge` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from drivers.sim.pcscd import list_readers
from hallctl import auth
from hallctl import events as ev
from hallctl.daemon import Hall
from hallctl.simulation.readers import NoFreeReader, claim_reader
from tests.devices.test_hall_devices import Watch, device_state, hall_config


def demo_config(tmp: Path) -> Hall:
    """A demo hall with its kiosks' devices and window 3's badge reader (no LED, pads or sensors)."""
    tmp.mkdir()
    return Hall(hall_config(tmp, keep_kinds=("idcard", "printer", "badge")), demo=True, state_dir=tmp)


async def start_demo(tmp: Path) -> Hall:
    hall = demo_config(tmp)
    await hall.start()
    return hall


async def admin(hall: Hall) -> httpx.AsyncClient:
    token = await auth.create_token(hall.store, "admin", ())
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{hall.api.port}", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def halls(tmp_path: Path) -> AsyncIterator[list[Hall]]:
    started: list[Hall] = []
    yield started
    for h in started:
        await h.stop()


def test_each_claim_takes_a_free_reader_and_a_third_is_refused() -> None:
    first, second = claim_reader(), claim_reader()
    try:
        assert {first.reader, second.reader} == {"Virtual PCD 00 00", "Virtual PCD 00 01"}
        with pytest.raises(NoFreeReader, match="in use by other demos"):
            claim_reader()
        first.release()
        again = claim_reader()  # released readers are free again
        assert again.reader == first.reader
        again.release()
    finally:
        first.release()
        second.release()


async def test_two_demos_sign_in_on_their_own_readers_and_outlive_each_other(tmp_path: Path, halls: list[Hall]) -> None:
    before = list_readers()  # None: no pcscd yet (the usual case here), else a system pcscd we must leave alone
    a = await start_demo(tmp_path / "a")
    halls.append(a)
    b = await start_demo(tmp_path / "b")
    halls.append(b)
    assert a.sims["badge3"].reader != b.sims["badge3"].reader

    for hall in (a, b):
        watch = Watch(hall)
        await device_state(watch, hall, "badge3", "ok", timeout=20)
        async with await admin(hall) as http:
            r = await http.post("/api/v1/sim/window/3/badge", json={})  # `hallctl simulate badge 3`
            assert r.status_code == 200 and r.json()["badge"] == "04A1B2C3"
            signed = await watch.wait(lambda e: isinstance(e, ev.StaffSignedIn) and e.window == 3)
            assert isinstance(signed, ev.StaffSignedIn) and signed.staff == "0231"
            # A staff id that has no badge is a clear 404, not a 500.
            r = await http.post("/api/v1/sim/window/3/badge", json={"staff": "9999"})
            assert r.status_code == 404 and r.json()["code"] == "unknown_staff"

    # The first demo stops; the second still reads badges through the same pcscd.
    halls.remove(a)
    await a.stop()
    watch = Watch(b)
    async with await admin(b) as http:
        assert (await http.post("/api/v1/sim/window/3/badge", json={"remove": True})).status_code == 200
        await watch.wait(lambda e: isinstance(e, ev.StaffSignedOut) and e.window == 3)
        assert (await http.post("/api/v1/sim/window/3/badge", json={"staff": "0231"})).status_code == 200
        await watch.wait(lambda e: isinstance(e, ev.StaffSignedIn) and e.window == 3)
    halls.remove(b)
    await b.stop()
    # The machine is left as found: a pcscd the demos started is gone once the last of them stopped.
    assert (list_readers() is None) == (before is None)
