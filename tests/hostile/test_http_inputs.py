"""Item 8: no input gives a 500; malformed JSON is ``malformed_json``; text fields are bounded."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from hallctl.simulation.routes import BadgeBody
from tests.hostile.http_helpers import bearer, connect, running_daemon

SIM = {
    "device": [{"id": "idr-k1", "kind": "idcard", "simulate": True}],
    "kiosk": [{"id": "k1", "categories": ["A"], "reader": "idr-k1"}],
}
HUGE_INT = b'{"category": "A", "kiosk": ' + b"9" * 5000 + b"}"
DEEP = b"[" * 30_000 + b"]" * 30_000  # far past the parser's recursion limit, within the body limit
BAD_UTF8 = b'{"category": "\xff\xfe"}'


def _problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code, r.text[:300]


def test_hostile_inputs_answer_problems_not_500(tmp_path: Path) -> None:
    with (
        running_daemon(tmp_path / "d", **SIM) as (d, tokens),
        httpx.Client(base_url=d.url, timeout=20) as c,
    ):
        kiosk, admin, w1 = bearer(tokens["kiosk"]), bearer(tokens["admin"]), bearer(tokens["w1"])
        # by-qr with a non-ASCII code: hmac.compare_digest used to raise TypeError (plain-text 500)
        for code in ("T1.é.ü", "T1.abc.ü", "ÄÖÜ"):
            _problem(c.get(f"/api/v1/tickets/by-qr/{code}", headers=w1), 422, "bad_qr_token")
        # malformed bodies, on a command route and on a model-body route
        for body in (HUGE_INT, DEEP, BAD_UTF8, b'{"category": NaN}'):
            r = c.post("/api/v1/tickets", content=body, headers={**kiosk, "Content-Type": "application/json"})
            _problem(r, 400, "malformed_json")
            r = c.post(
                "/api/v1/sim/kiosk/k1/swipe", content=body, headers={**admin, "Content-Type": "application/json"}
            )
            assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] in ("malformed_json", "invalid_request"), r.text[:300]
        # a superscript digit is a digit to str.isdigit, not to int()
        r = c.post("/api/v1/sim/kiosk/k1/swipe", json={"card": "²"}, headers=admin)
        _problem(r, 404, "unknown_card")
        # evaluation reasons are a few short tags, not megabytes
        r = c.post("/api/v1/windows/1/evaluation", json={"level": 5, "reasons": ["x" * 60000]}, headers=w1)
        _problem(r, 422, "invalid_arguments")
        r = c.post("/api/v1/windows/1/evaluation", json={"level": 5, "reasons": ["慢"] * 5000}, headers=w1)
        _problem(r, 422, "invalid_arguments")
        r = c.post("/api/v1/climate/z1", json={"target": 1e308}, headers=admin)
        assert r.status_code == 422
        log = d.log.read_text()
        assert "Traceback" not in log, log[-3000:]


def test_unparseable_requests_answer_problem_json(tmp_path: Path) -> None:
    """Headers larger than h11 takes, or a broken request line: 400 problem+json, not uvicorn's plain text."""
    with running_daemon(tmp_path / "d") as (d, _tokens):
        for raw in (
            b"GET /api/v1/health HTTP/1.1\r\nHost: hall\r\nX-Junk: " + b"a" * 40000,  # headers that never end
            b"GET /api/v1/health HTTP/1.1 junk\r\n\r\n",
        ):
            with connect(d.port) as s:
                s.sendall(raw)
                got = b""
                while len(got) < 65536:
                    data = s.recv(65536)
                    if not data:
                        break
                    got += data
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400"), got[:200]
            assert b"content-type: application/problem+json" in head.lower()
            assert json.loads(body)["code"] == "bad_request"


def test_badge_uid_must_be_whole_bytes() -> None:
    """``{"uid": "ABCDE"}`` (odd length) used to pass and fail in bytes.fromhex (500)."""
    with pytest.raises(ValidationError):
        BadgeBody.model_validate({"uid": "ABCDE"})
    assert BadgeBody.model_validate({"uid": "ABCD"}).uid == "ABCD"


async def test_unexpected_errors_answer_problem_json() -> None:
    """The catch-all: whatever escapes a route answers problem+json 500 internal_error, logged."""
    from fastapi import FastAPI

    from hallctl.http.limits import CatchAll

    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(CatchAll)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hall") as c:
        r = await c.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert json.loads(r.text)["code"] == "internal_error"
