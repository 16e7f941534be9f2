"""The HTTP API of an in-process hall (port 0, fake clock): problems, auth, privacy, idempotency, SSE, stats."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hallctl.engine import Holder
from tests.core.core_helpers import FakeClock, LiveHall

PROBLEM = "application/problem+json"
HOLDER = Holder(name="欧阳建国", id_number="11010119500101123X", address="北京市西城区某街1号")


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["code"] == code and body["title"] and "detail" in body
    return body


async def issue(live: LiveHall, category: str = "A", who: str = "kiosk", **headers: str) -> httpx.Response:
    return await live.client.post("/api/v1/tickets", json={"category": category}, headers={**live.auth(who), **headers})


# ---- bad input --------------------------------------------------------------------------------------


async def test_malformed_json_is_400_problem(live: LiveHall) -> None:
    """a body that is not JSON (sent as application/json) is 400 malformed_json."""
    resp = await live.client.post(
        "/api/v1/tickets",
        content=b'{"category": "A"',
        headers={**live.auth("kiosk"), "Content-Type": "application/json"},
    )
    assert_problem(resp, 400, "malformed_json")
    assert live.svc._q.tickets == {}


BODIES = [
    b'{"category": "A"}',
    b' \t\r\n{"category": "A"} \r\n\t',
    b'{"category":"A","kiosk":"k1"}',
    '{"category": "号"}'.encode(),
    '{"category": "号"}'.encode("utf-8-sig"),
    '{"category": "A"}'.encode("utf-16"),
    '{"category": "A"}'.encode("utf-16-le"),
    '{"category": "A"}'.encode("utf-16-be"),
    '{"category": "A"}'.encode("utf-32"),
    '{"category": "A"}'.encode("utf-32-le"),
    b'{"category": "A"} x',
    b'{"category": "A"}{}',
    b'{"category": "A"',
    b"{",
    b"{}",
    b"[]",
    b'"A"',
    b"1",
    b"x",
    b"\x00{}",
]


@pytest.mark.parametrize("raw", BODIES)
def test_a_command_body_is_read_as_json_loads_reads_it(raw: bytes) -> None:
    """What the command routes take from a body (encodings, whitespace, what follows the value) is
    what ``json.loads`` takes: an object, or 400 malformed_json, or 422 for JSON that is no object."""
    from hallctl.commands import CommandError
    from hallctl.errors import HallctlError
    from hallctl.http.api import _json_body

    try:
        expected: Any = json.loads(raw)
        if not isinstance(expected, dict):
            expected = "invalid_arguments"
    except ValueError:
        expected = "malformed_json"
    try:
        got: Any = _json_body(raw)
    except (CommandError, HallctlError) as exc:
        got = exc.code
    assert got == expected


@pytest.mark.parametrize("body", [{"category": 5}, {"category": ["A"]}, {}, {"category": "A", "colour": "red"}])
async def test_wrong_types_are_422_problem(live: LiveHall, body: dict[str, Any]) -> None:
    """wrong types, missing fields and unknown fields are 422 invalid_arguments (command layer), nothing issued."""
    resp = await live.client.post("/api/v1/tickets", json=body, headers=live.auth("kiosk"))
    assert assert_problem(resp, 422, "invalid_arguments")["errors"]
    assert live.svc._q.tickets == {}


async def test_unknown_category_is_404(live: LiveHall) -> None:
    """an unknown category prefix is 404 unknown_category."""
    assert_problem(await issue(live, "Z"), 404, "unknown_category")


async def test_unknown_window_is_404(live: LiveHall) -> None:
    """acting for a window that does not exist is 404 unknown_window."""
    resp = await live.client.post("/api/v1/windows/99/call-next", headers=live.auth("admin"))
    assert_problem(resp, 404, "unknown_window")


async def test_unknown_route_is_problem(live: LiveHall) -> None:
    """even an unknown path answers as problem+json."""
    assert_problem(await live.client.get("/api/v1/nope", headers=live.auth("admin")), 404, "not_found")


# ---- authentication and roles -------------------------------------------------------------------------


async def test_missing_and_bad_token_401(live: LiveHall) -> None:
    """no token or an unknown token is 401."""
    resp = await live.client.post("/api/v1/tickets", json={"category": "A"})
    assert_problem(resp, 401, "missing_token")
    resp = await live.client.post(
        "/api/v1/tickets", json={"category": "A"}, headers={"Authorization": "Bearer hct_not-a-token"}
    )
    assert_problem(resp, 401, "bad_token")
    assert live.svc._q.tickets == {}


async def test_wrong_role_403(live: LiveHall) -> None:
    """a display token cannot issue tickets and a kiosk token cannot call."""
    assert_problem(await issue(live, who="display"), 403, "forbidden")
    await issue(live)
    resp = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("kiosk"))
    assert_problem(resp, 403, "forbidden")


async def test_window_token_cannot_act_for_another_window(live: LiveHall) -> None:
    """a token of window 1 is refused at window 2 (403) and nothing is called there."""
    await issue(live)
    for action in ("call-next", "recall", "finish", "no-show", "pause"):
        resp = await live.client.post(f"/api/v1/windows/2/{action}", headers=live.auth("w1"))
        assert_problem(resp, 403, "wrong_window")
    resp = await live.client.post("/api/v1/windows/2/call", json={"number": "A001"}, headers=live.auth("w1"))
    assert_problem(resp, 403, "wrong_window")
    assert live.svc._q.window(2).current is None
    ok = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
    assert ok.status_code == 200 and ok.json()["ticket"]["number"] == "A001"


# ---- QR codes and personal data -----------------------------------------------------------------------


async def test_by_qr_gives_holder_to_window_only(live: LiveHall) -> None:
    """by-qr returns the full holder to a window token; kiosk and display tokens get 403."""
    out = await live.svc.issue("A", channel="kiosk", holder=HOLDER)
    for who in ("kiosk", "display"):
        resp = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth(who))
        assert_problem(resp, 403, "forbidden")
    resp = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth("w1"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["ticket"]["id"] == out.ticket.id
    assert body["holder"]["name"] == HOLDER.name and body["holder"]["id_number"] == HOLDER.id_number


async def test_by_qr_is_scoped_to_the_tokens_windows(live: LiveHall) -> None:
    """a clerk sees holders of their own windows' queues only: window 1 (A) cannot open a C ticket."""
    out = await live.svc.issue("C", channel="kiosk", holder=HOLDER)
    resp = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth("w1"))
    body = assert_problem(resp, 403, "wrong_window")
    assert HOLDER.name not in json.dumps(body, ensure_ascii=False)
    resp = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth("w2"))  # serves A and C
    assert resp.status_code == 200 and resp.json()["holder"]["name"] == HOLDER.name


async def test_expired_and_forged_qr_token(live: LiveHall, clock: FakeClock) -> None:
    """a QR token past its TTL (by the hall's clock) or with a bad signature is refused."""
    out = await live.svc.issue("A", holder=HOLDER)
    ttl_h = live.hall.cfg.privacy.qr_token_ttl_hours
    clock.advance(hours=ttl_h - 0.1)
    ok = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth("w1"))
    assert ok.status_code == 200
    clock.advance(hours=0.2)
    resp = await live.client.get(f"/api/v1/tickets/by-qr/{out.qr}", headers=live.auth("w1"))
    body = assert_problem(resp, 422, "expired_qr_token")
    assert HOLDER.name not in json.dumps(body, ensure_ascii=False)
    version, payload, mac = out.qr.split(".")
    forged = f"{version}.{payload}.{'A' * len(mac)}"
    assert_problem(
        await live.client.get(f"/api/v1/tickets/by-qr/{forged}", headers=live.auth("w1")), 422, "bad_qr_token"
    )


async def test_qr_payload_is_opaque(live: LiveHall) -> None:
    """the QR payload carries no name or ID number, not even encoded."""
    import base64

    out = await live.svc.issue("A", holder=HOLDER)
    _, payload, _ = out.qr.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    for secret in (HOLDER.name, HOLDER.id_number, HOLDER.id_number[-4:] + "|"):
        assert secret not in out.qr and secret not in decoded


async def test_no_full_personal_data_outside_by_qr(live: LiveHall) -> None:
    """tickets, queue, stats, windows and the issue response never carry the full name or ID number."""
    out = await live.svc.issue("A", channel="kiosk", holder=HOLDER)
    await live.svc.call_next(1)
    await live.svc.transfer(1, "B", None)
    await live.svc.issue("A", holder=HOLDER)
    created = await issue(live)
    day = live.svc._q.day.isoformat()
    texts = [created.text]
    for path in (
        "/api/v1/tickets",
        f"/api/v1/tickets/{out.ticket.id}",
        "/api/v1/windows/1/queue",
        "/api/v1/windows/3/queue",
        "/api/v1/stats/live",
        f"/api/v1/stats?date={day}",
        "/api/v1/categories",
        "/api/v1/windows",
        "/api/v1/health",
        "/api/v1/alerts",
    ):
        for who in ("admin", "w1", "display"):
            resp = await live.client.get(path, headers=live.auth(who))
            assert resp.status_code == 200, (path, resp.text)
            texts.append(resp.text)
    blob = "\n".join(texts)
    listed = (await live.client.get("/api/v1/tickets", headers=live.auth("display"))).json()
    assert "欧**国" in [t["holder"] for t in listed]  # the masked form is there
    for secret in (HOLDER.name, HOLDER.id_number, HOLDER.address, json.dumps(HOLDER.name)[1:-1]):
        assert secret not in blob


# ---- idempotency ----------------------------------------------------------------------------------------


async def test_idempotency_key_retry_returns_same_ticket(live: LiveHall) -> None:
    """a retry with the same Idempotency-Key returns the first ticket, marked Idempotent-Replayed."""
    first = await issue(live, **{"Idempotency-Key": "kiosk1-0001"})
    again = await issue(live, **{"Idempotency-Key": "kiosk1-0001"})
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["qr"] == first.json()["qr"]
    other = await issue(live, **{"Idempotency-Key": "kiosk1-0002"})
    assert other.json()["number"] == "A002"
    assert len(live.svc._q.tickets) == 2


async def test_concurrent_same_key_gives_one_ticket(live: LiveHall) -> None:
    """ten concurrent requests with one Idempotency-Key issue exactly one ticket."""
    resps = await asyncio.gather(*(issue(live, **{"Idempotency-Key": "same"}) for _ in range(10)))
    assert {r.status_code for r in resps} == {201}
    assert len({r.json()["id"] for r in resps}) == 1
    rows = await live.hall.store.read(lambda c: c.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])
    assert rows == 1
    assert (await issue(live)).json()["number"] == "A002"
    health = (await live.client.get("/api/v1/health", headers=live.auth("admin"))).json()
    assert health["status"] == "ok" and health["store"]["write_errors"] == 0  # a retry race is no fault


async def test_idempotency_keys_are_per_token(live: LiveHall) -> None:
    """the same key from two different kiosks issues two tickets."""
    a = await issue(live, **{"Idempotency-Key": "k"})
    b = await issue(live, who="guide", **{"Idempotency-Key": "k"})
    assert a.json()["id"] != b.json()["id"]


# ---- streams, OpenAPI ----------------------------------------------------------------------------------


async def test_sse_snapshot_then_ticket_called(live: LiveHall) -> None:
    """the SSE stream sends the retained state, then a ticket_called event when a window calls."""
    await issue(live)
    events: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(20), live.client.stream("GET", "/api/v1/events", headers=live.auth("display")) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        name = ""
        lines = resp.aiter_lines()
        async for line in lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "ready":
                    break
        snapshot = {n for n, _ in events}
        assert {"queue_state", "window_state"} <= snapshot
        queue_a = next(d for n, d in events if n == "queue_state" and d["category"] == "A")
        assert queue_a["waiting"] == 1
        call = await live.client.post("/api/v1/windows/1/call-next", headers=live.auth("w1"))
        assert call.status_code == 200
        async for line in lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "ticket_called":
                data = json.loads(line[6:])
                break
    assert data["number"] == "A001" and data["window"] == 1
    assert data["announcement"] == "请A001号到1号窗口办理"


async def test_openapi_served(live: LiveHall) -> None:
    """/api/v1/openapi.json is served without a token and lists the ticket routes."""
    resp = await live.client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    assert "/api/v1/tickets" in paths and "/api/v1/windows/{window}/call-next" in paths


async def test_health_needs_no_token(live: LiveHall) -> None:
    """/health answers without a token and shows the hall and business day."""
    resp = await live.client.get("/api/v1/health")
    assert resp.status_code == 200 and resp.json()["hall"] == "test" and resp.json()["day"] == "2026-11-23"


# ---- window flow and statistics --------------------------------------------------------------------------


async def test_stats_for_a_scripted_day(live: LiveHall, clock: FakeClock) -> None:
    """GET /stats?date= computes waits, service level, no-shows and satisfaction for a scripted day."""
    w1 = live.auth("w1")
    post = live.client.post
    for _ in range(4):
        assert (await issue(live)).status_code == 201  # A001..A004 at 09:00, target 10 min
    clock.advance(minutes=5)
    assert (await post("/api/v1/windows/1/call-next", headers=w1)).json()["ticket"]["number"] == "A001"
    assert (await post("/api/v1/windows/1/start", headers=w1)).status_code == 200
    clock.advance(minutes=10)
    assert (await post("/api/v1/windows/1/finish", headers=w1)).status_code == 200
    ev1 = await post("/api/v1/windows/1/evaluation", json={"level": 5}, headers=live.auth("p1"))
    assert ev1.status_code == 201
    # A002: called at 09:15 (wait 15 min > target), served 5 min, rated 1.
    await post("/api/v1/windows/1/call-next", headers=w1)
    clock.advance(minutes=5)
    await post("/api/v1/windows/1/finish", headers=w1)
    ev2 = await post("/api/v1/windows/1/evaluation", json={"level": 1}, headers=live.auth("p1"))
    assert ev2.status_code == 201
    dup = await post("/api/v1/windows/1/evaluation", json={"level": 3}, headers=live.auth("p1"))
    assert_problem(dup, 409, "already_evaluated")
    # A003: called at 09:20 (wait 20 min), no-show.
    await post("/api/v1/windows/1/call-next", headers=w1)
    assert (await post("/api/v1/windows/1/no-show", headers=w1)).json()["ticket"]["state"] == "no_show"
    # A004 still waiting.
    resp = await live.client.get("/api/v1/stats", params={"date": "2026-11-23"}, headers=live.auth("admin"))
    assert resp.status_code == 200
    total = resp.json()["total"]
    assert total["issued"] == 4 and total["called"] == 3 and total["done"] == 2 and total["no_show"] == 1
    assert total["avg_wait_s"] == pytest.approx((300 + 900 + 1200) / 3, abs=0.1)
    assert total["service_level"] == pytest.approx(1 / 3, abs=0.001)
    assert total["avg_service_s"] == pytest.approx((600 + 300) / 2)
    assert total["satisfaction"] == 0.5 and total["evaluations"] == 2 and total["bad_evaluations"] == 1
    assert total["no_show_rate"] == pytest.approx(1 / 3, abs=0.001)
    assert resp.json()["by_window"]["1"]["done"] == 2
    other = await live.client.get("/api/v1/stats", params={"date": "2026-11-22"}, headers=live.auth("admin"))
    assert other.json()["total"]["issued"] == 0
    alerts = (await live.client.get("/api/v1/alerts", headers=live.auth("admin"))).json()
    assert [a["alert"] for a in alerts] == ["bad_evaluation"]


async def test_appointment_check_in_over_http(live: LiveHall, clock: FakeClock) -> None:
    """a guide books, a kiosk checks in on time and gets appointment priority; too early is 422."""
    start = clock.now  # 09:00, the first of the day's 30-minute slots
    body = {
        "category": "A",
        "slot_start": start.isoformat(),
        "slot_end": (start + timedelta(minutes=30)).isoformat(),
        "code": "201234",
    }
    assert (await live.client.post("/api/v1/appointments", json=body, headers=live.auth("guide"))).status_code == 201
    early = {
        **body,
        "code": "209999",
        "slot_start": (start + timedelta(hours=2)).isoformat(),
        "slot_end": (start + timedelta(hours=2, minutes=30)).isoformat(),
    }
    await live.client.post("/api/v1/appointments", json=early, headers=live.auth("guide"))
    await issue(live)
    resp = await live.client.post("/api/v1/appointments/201234/check-in", headers=live.auth("kiosk"))
    assert resp.status_code == 201 and resp.json()["priority"] == "appointment" and resp.json()["position"] == 1
    assert_problem(
        await live.client.post("/api/v1/appointments/209999/check-in", headers=live.auth("kiosk")),
        422,
        "appointment_too_early",
    )
