"""One command table: every action exists on HTTP and MQTT, with one validation layer and one set of codes."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hallctl.auth import Principal
from hallctl.commands import COMMANDS, HTTP, MQTT, Call, dispatch
from hallctl.engine import Holder
from hallctl.mqtt.commands import command_for_topic, topic_for
from tests.core.core_helpers import FakeClock, LiveHall

PROBLEM = "application/problem+json"
HOLDER = Holder(name="欧阳建国", id_number="11010119500101123X", address="北京市西城区某街1号")
ROOT = "hallctl/test"

# The actions the hall offers (issue "The house"); each must be in the table, hence on both transports.
REQUIRED = {
    "ticket.issue",
    "ticket.cancel",
    "ticket.reprint",
    "ticket.evaluate",
    "ticket.by_qr",
    "window.call_next",
    "window.call",
    "window.recall",
    "window.no_show",
    "window.transfer",
    "window.pause",
    "window.resume",
    "window.start",
    "window.finish",
    "window.evaluate",
    "window.sign_in",
    "window.sign_out",
    "appointment.book",
    "appointment.cancel",
    "appointment.check_in",
    "appointment.check_in_by",
    "appointment.list",
    "appointment.reschedule",
    "appointment.slots",
    "climate.set",
    "display.show",
}


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    return body


# ---- the table covers both transports ------------------------------------------------------------


async def test_every_command_has_an_http_route_and_an_mqtt_topic(live: LiveHall) -> None:
    """Each command of the table is in the OpenAPI (right method, path, body) and maps back from its topic."""
    assert set(COMMANDS) >= REQUIRED
    spec = (await live.client.get("/api/v1/openapi.json")).json()
    for name, cmd in COMMANDS.items():
        op = spec["paths"].get(f"/api/v1{cmd.http.path}", {}).get(cmd.http.method.lower())
        assert op is not None, f"{name}: no HTTP route {cmd.http.method} {cmd.http.path}"
        assert op["x-command"] == name
        assert str(cmd.http.status) in op["responses"]
        documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert documented == set(cmd.http.params), name
        body_fields = set(cmd.args.model_fields) - set(cmd.http.params)
        if cmd.http.method != "GET" and body_fields:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert set(schema["properties"]) == body_fields, name
        # MQTT: the topic with sample parameter values maps back onto this command and those values.
        sample = {p: f"{p}-1" for p in cmd.topic_params}
        assert command_for_topic(ROOT, topic_for(ROOT, name, sample)) == (name, sample)


async def test_no_command_route_outside_the_table(live: LiveHall) -> None:
    """Every state-changing route of /api/v1 (simulators apart) comes from the table: no HTTP-only action."""
    spec = (await live.client.get("/api/v1/openapi.json")).json()
    for path, ops in spec["paths"].items():
        if path.startswith("/api/v1/sim/"):
            continue
        for method, op in ops.items():
            if method != "get":
                assert op.get("x-command") in COMMANDS, f"{method.upper()} {path} is not in the command table"


# ---- one validation layer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/windows/abc/call-next", None),  # the path parameter goes through the command's model
        ("/api/v1/windows/1/call-next", {"window": 2}),  # a body may not name a path parameter
        ("/api/v1/windows/1/call", {"number": "A001", "colour": "red"}),  # unknown fields refused
        ("/api/v1/windows/1/transfer", {"to_window": "three"}),
        ("/api/v1/climate/floor1", {"mode": "sauna"}),
        ("/api/v1/tickets", [1, 2]),
    ],
)
async def test_bad_arguments_are_invalid_arguments_over_http(live: LiveHall, path: str, body: Any) -> None:
    """Path parameters and bodies are validated by the command model: 422 invalid_arguments, nothing called."""
    await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    resp = await live.client.post(path, json=body, headers=live.auth("admin"))
    assert_problem(resp, 422, "invalid_arguments")
    assert live.svc._q.window(1).current is None and live.svc._q.window(2).current is None


async def test_window_commands_take_no_body_or_an_empty_one(live: LiveHall) -> None:
    """The window terminal posts `{}` and scripts post nothing: both work."""
    await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    resp = await live.client.post("/api/v1/windows/1/call-next", json={}, headers=live.auth("w1"))
    assert resp.status_code == 200 and resp.json()["ticket"]["number"] == "A001"
    resp = await live.client.post("/api/v1/windows/1/recall", headers=live.auth("w1"))
    assert resp.status_code == 200 and resp.json()["ticket"]["recalls"] == 1


# ---- the commands that were HTTP-only, and the new ones ---------------------------------------------


async def test_ticket_cancel_and_reprint_over_http(live: LiveHall) -> None:
    """A guide cancels a waiting ticket (once); reprint without a kiosk is refused with no_printer."""
    t = (await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("guide"))).json()
    resp = await live.client.post(f"/api/v1/tickets/{t['id']}/cancel", headers=live.auth("guide"))
    assert resp.status_code == 200 and resp.json()["state"] == "cancelled" and resp.json()["id"] == t["id"]
    again = await live.client.post(f"/api/v1/tickets/{t['id']}/cancel", headers=live.auth("kiosk"))
    assert_problem(again, 409, "ticket_not_waiting")
    assert_problem(
        await live.client.post(f"/api/v1/tickets/{t['id']}/cancel", headers=live.auth("w1")), 403, "forbidden"
    )
    reprint = await live.client.post(f"/api/v1/tickets/{t['id']}/reprint", json={}, headers=live.auth("guide"))
    assert_problem(reprint, 422, "no_printer")


def _booking(clock: FakeClock, code: str, minutes: int = 30) -> dict[str, Any]:
    start = clock.now + timedelta(minutes=minutes)
    return {
        "category": "A",
        "slot_start": start.isoformat(),
        "slot_end": (start + timedelta(minutes=30)).isoformat(),
        "code": code,
    }


async def test_appointment_cancel_over_http(live: LiveHall, clock: FakeClock) -> None:
    """A guide cancels a booking: it is cancelled, logged, cannot be checked in; unknown and used codes refused."""
    guide = live.auth("guide")
    booked = await live.client.post("/api/v1/appointments", json=_booking(clock, "201234"), headers=guide)
    assert booked.status_code == 201 and booked.json()["state"] == "booked"
    resp = await live.client.post("/api/v1/appointments/201234/cancel", headers=guide)
    # The cancel answer is the booking without its QR (a cancelled booking has none to scan).
    assert resp.status_code == 200 and {**resp.json(), "qr": booked.json()["qr"]} == {
        **booked.json(),
        "state": "cancelled",
    }
    assert live.svc._q.appointments["201234"].state == "cancelled"
    check_in = await live.client.post("/api/v1/appointments/201234/check-in", headers=live.auth("kiosk"))
    assert_problem(check_in, 409, "appointment_used")
    assert_problem(await live.client.post("/api/v1/appointments/201234/cancel", headers=guide), 409, "appointment_used")
    assert_problem(
        await live.client.post("/api/v1/appointments/999999/cancel", headers=guide), 404, "unknown_appointment"
    )
    assert_problem(
        await live.client.post("/api/v1/appointments/201234/cancel", headers=live.auth("kiosk")), 403, "forbidden"
    )
    await live.client.post("/api/v1/appointments", json=_booking(clock, "205678"), headers=guide)
    assert (await live.client.post("/api/v1/appointments/205678/check-in", headers=guide)).status_code == 201
    assert_problem(await live.client.post("/api/v1/appointments/205678/cancel", headers=guide), 409, "appointment_used")

    def log(c: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
        rows = c.execute("SELECT kind, data FROM event_log WHERE kind LIKE 'appointment_%' ORDER BY seq")
        return [(r[0], json.loads(r[1])) for r in rows]

    kinds = [(k, d["code"]) for k, d in await live.svc._store.read(log)]
    assert ("appointment_cancelled", "201234") in kinds and ("appointment_cancelled", "205678") not in kinds


async def test_ticket_evaluation_is_for_the_serving_window_only(live: LiveHall) -> None:
    """POST /tickets/{id}/evaluation: the pad of the window that served it may rate it once; others 403."""
    t = (await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))).json()
    early = await live.client.post(f"/api/v1/tickets/{t['id']}/evaluation", json={"level": 5}, headers=live.auth("p1"))
    assert_problem(early, 409, "ticket_not_served")
    await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    await live.client.post("/api/v1/windows/1/finish", headers=live.auth("w1"))
    other = await live.client.post(f"/api/v1/tickets/{t['id']}/evaluation", json={"level": 5}, headers=live.auth("p2"))
    assert_problem(other, 403, "wrong_window")
    ok = await live.client.post(f"/api/v1/tickets/{t['id']}/evaluation", json={"level": 4}, headers=live.auth("p1"))
    assert ok.status_code == 201 and ok.json()["evaluation"]["level"] == 4


async def test_display_show_over_http_is_admin_only(live: LiveHall) -> None:
    """display.show, once MQTT-only, is served on HTTP too, with the same role rule."""
    resp = await live.client.post("/api/v1/displays/led3/show", json={"text": "暂停服务"}, headers=live.auth("admin"))
    assert resp.status_code == 200 and resp.json() == {"display": "led3", "text": "暂停服务"}
    denied = await live.client.post("/api/v1/displays/led3/show", json={"text": "x"}, headers=live.auth("guide"))
    assert_problem(denied, 403, "forbidden")


# ---- personal data is a property of the transport ------------------------------------------------------


async def test_by_qr_holder_is_full_over_http_and_masked_elsewhere(live: LiveHall) -> None:
    """The same command gives the full holder to an HTTP window token, and only the masked form over MQTT."""
    out = await live.svc.issue("A", channel="kiosk", holder=HOLDER)
    admin = Principal(role="admin", label="test")
    full = await dispatch(live.hall.ctx, "ticket.by_qr", {"code": out.qr}, Call(admin, HTTP))
    assert full["holder"]["name"] == HOLDER.name and full["holder"]["id_number"] == HOLDER.id_number
    masked = await dispatch(live.hall.ctx, "ticket.by_qr", {"code": out.qr}, Call(admin, MQTT))
    text = json.dumps(masked, ensure_ascii=False)
    assert HOLDER.name not in text and HOLDER.id_number not in text and "西城区" not in text
    assert masked["holder"]["name"] == "欧**国" and masked["ticket"]["id"] == out.ticket.id
    # Without a transport (a script calling dispatch) the masked form is the default.
    default = await dispatch(live.hall.ctx, "ticket.by_qr", {"code": out.qr}, admin)
    assert default["holder"] == masked["holder"]
