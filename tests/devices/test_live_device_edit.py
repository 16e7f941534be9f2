"""Devices and kiosks edited live in the admin console: the driver is swapped, no restart.

A hall whose printers are real ``[[device]]`` entries (``port`` = a pty) with ESC/POS
simulators behind three ptys, a config file with comments, and the console's HTTP routes:
a printer's port changed live prints the next ticket on the new printer; a kiosk moved to
another printer prints there; a referenced device cannot be deleted (both languages, who
uses it), an unreferenced one can and leaves ``/devices``, a new one gets its driver at
once; turning ``simulate`` on is refused as needing a restart. Run with the pcscd lock (tests/devices).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from drivers.sim.escpos import EscPosSim
from hallctl import config
from hallctl import events as ev
from hallctl.daemon import Hall
from tests.core.core_helpers import config_dict, to_toml
from tests.devices.test_hall_devices import Watch

PASSWORD = "correct horse battery"
COMMENT = "# 自助机打印机 printers (a comment the console must keep)\n"


@dataclass
class Desk:
    hall: Hall
    client: httpx.AsyncClient
    path: Path
    sims: dict[str, EscPosSim]
    ports: dict[str, str]
    watch: Watch

    def csrf(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.client.cookies.get("hallctl_csrf") or ""}

    async def state(self, device: str, state: str, timeout: float = 10.0) -> None:
        """Wait until the device's health is ``state`` (after a swap: reported by the new driver)."""

        def now_in_state(_: ev.Event | None = None) -> bool:
            d = self.hall.service.devices.get(device)
            return d is not None and d.state == state

        if not now_in_state():
            await self.watch.wait(now_in_state, timeout)  # checked at each event, on the current state

    async def print_one(self, sim: str) -> str:
        """Issue a ticket at kiosk k1 and wait until ``sim`` printed it; its number."""
        sim_ = self.sims[sim]
        had = len(sim_.tickets)
        out = await self.hall.service.issue("A", kiosk="k1", channel="kiosk")
        number = out.ticket.number
        await self.watch.wait(lambda e: isinstance(e, ev.KioskNotice) and e.code == "printed" and e.number == number)
        # With status "none" the driver reports printed once the bytes are written: wait for the paper.
        tickets = await sim_.wait_tickets(had + 1)
        assert number in tickets[-1].text_lines
        return number


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AsyncExitStack() as stack:
        sims: dict[str, EscPosSim] = {}
        ports: dict[str, str] = {}
        for name in ("s1", "s2", "s3"):
            ports[name] = str(tmp_path / f"pty-{name}")
            sims[name] = EscPosSim(ports[name], tmp_path / f"tickets-{name}")
            await stack.enter_async_context(sims[name])
        data = config_dict(
            store={"path": str(tmp_path / "hall.db")},
            kiosk=[{"id": "k1", "categories": ["A"], "printer": "prn-a"}],
            device=[
                {"id": "prn-a", "kind": "printer", "port": ports["s1"]},
                {"id": "prn-b", "kind": "printer", "port": ports["s3"]},
            ],
        )
        path = tmp_path / "hallctl.toml"
        path.write_text(to_toml(data).replace("[[device]]\n", COMMENT + "[[device]]\n", 1), encoding="utf-8")
        hall = Hall(config.load(path), state_dir=tmp_path / "state", config_path=path)
        await hall.start()
        stack.push_async_callback(hall.stop)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20)
        stack.push_async_callback(client.aclose)
        await hall.admin.add_account("boss", "hall_admin", PASSWORD, "test")
        r = await client.post("/api/v1/admin/login", json={"name": "boss", "password": PASSWORD})
        assert r.status_code == 200, r.text
        d = Desk(hall, client, path, sims, ports, Watch(hall))
        for dev in ("prn-a", "prn-b"):
            await d.state(dev, "ok")
        yield d


async def test_printer_port_changed_live_prints_the_next_ticket_on_the_new_printer(desk: Desk) -> None:
    first = await desk.print_one("s1")
    r = await desk.client.put("/api/v1/admin/config/device/prn-a", json={"port": desk.ports["s2"]}, headers=desk.csrf())
    assert r.status_code == 200, r.text
    assert r.json()["port"] == desk.ports["s2"]
    await desk.state("prn-a", "ok")
    second = await desk.print_one("s2")
    assert [t.text_lines.count(first) for t in desk.sims["s1"].tickets] == [1]  # nothing more on the old one
    assert all(second not in t.text_lines for t in desk.sims["s1"].tickets)

    text = desk.path.read_text(encoding="utf-8")
    assert COMMENT in text and f'port = "{desk.ports["s2"]}"' in text
    assert config.load(desk.path) == desk.hall.service.cfg
    rows = await desk.hall.store.audit_rows()
    assert (rows[-1].action, rows[-1].target) == ("config.device.update", "device:prn-a")
    assert rows[-1].before["port"] == desk.ports["s1"] and rows[-1].after["port"] == desk.ports["s2"]

    # A printer that never answers status queries: options.status in the file, the driver rebuilt with it.
    r = await desk.client.put("/api/v1/admin/config/device/prn-a", json={"printer_status": "none"}, headers=desk.csrf())
    assert r.status_code == 200, r.text
    assert config.load(desk.path).device[0].printer_status == "none"
    listed = (await desk.client.get("/api/v1/admin/config")).json()["device"]
    assert [(d["id"], d["printer_status"]) for d in listed] == [("prn-a", "none"), ("prn-b", "query")]
    await desk.print_one("s2")


async def test_a_kiosk_moved_to_another_printer_prints_there_and_its_page_is_told(desk: Desk) -> None:
    r = await desk.client.put("/api/v1/admin/config/kiosk/k1", json={"printer": "prn-b"}, headers=desk.csrf())
    assert r.status_code == 200, r.text
    await desk.watch.wait(lambda e: isinstance(e, ev.ConfigChanged) and "kiosk" in e.sections)
    number = await desk.print_one("s3")
    assert all(number not in t.text_lines for t in desk.sims["s1"].tickets)
    kiosks = (await desk.client.get("/api/v1/admin/config")).json()["kiosk"]
    assert kiosks[0]["id"] == "k1" and kiosks[0]["printer"] == "prn-b"


async def test_deleting_a_used_device_is_refused_an_unused_one_goes(desk: Desk) -> None:
    before = desk.path.read_text(encoding="utf-8")
    r = await desk.client.delete("/api/v1/admin/config/device/prn-a", headers=desk.csrf())
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "device_in_use"
    assert "自助机 k1" in body["detail"] and "kiosk k1 (printer)" in body["detail_en"]
    assert desk.path.read_text(encoding="utf-8") == before
    assert "prn-a" in desk.hall.service.devices

    r = await desk.client.put("/api/v1/admin/config/device/prn-b", json={"simulate": True}, headers=desk.csrf())
    assert r.status_code == 409 and r.json()["code"] == "needs_restart", r.text
    assert desk.path.read_text(encoding="utf-8") == before

    r = await desk.client.delete("/api/v1/admin/config/device/prn-b", headers=desk.csrf())
    assert r.status_code == 200, r.text
    assert "prn-b" not in desk.hall.service.devices
    assert [d.id for d in desk.hall.service.cfg.device] == ["prn-a"]
    text = desk.path.read_text(encoding="utf-8")
    assert COMMENT in text and "prn-b" not in text
    rows = await desk.hall.store.audit_rows()
    assert (rows[-1].action, rows[-1].target) == ("config.device.delete", "device:prn-b")
    await desk.print_one("s1")  # the kept printer still prints

    # A device added live gets a driver at once: its health comes from the new driver.
    r = await desk.client.put(
        "/api/v1/admin/config/device/prn-c", json={"kind": "printer", "port": desk.ports["s2"]}, headers=desk.csrf()
    )
    assert r.status_code == 200, r.text
    await desk.state("prn-c", "ok")
    assert desk.hall.service.devices["prn-c"].device_kind == "printer"
