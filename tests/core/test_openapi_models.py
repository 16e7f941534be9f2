"""The OpenAPI document matches what the server answers: real answers validate against the
declared models (strictly), and every problem's ``code`` is listed for its operation and status."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

from hallctl import schemas
from hallctl.commands import COMMANDS
from hallctl.http.openapi import ROUTES
from tests.core.core_helpers import FakeClock, LiveHall


def _op(spec: dict[str, Any], method: str, url: str) -> dict[str, Any]:
    """The operation of ``spec`` that serves ``url`` (path templates matched segment by segment)."""
    parts = url.split("?")[0].strip("/").split("/")
    for path, item in spec["paths"].items():
        tpl = path.strip("/").split("/")
        if (
            len(tpl) == len(parts)
            and all(t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(tpl, parts, strict=True))
            and method in item
        ):
            return dict(item[method])
    raise AssertionError(f"no operation for {method} {url}")


def _model(op: dict[str, Any]) -> Any:
    if "x-command" in op:
        return schemas.COMMAND_RESPONSES[op["x-command"]]
    return ROUTES[op["operationId"]].model


def _check(spec: dict[str, Any], method: str, url: str, resp: httpx.Response) -> None:
    op = _op(spec, method, url)
    status = str(resp.status_code)
    assert status in op["responses"], f"{method} {url}: {status} not documented"
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = schemas.Problem.model_validate_json(resp.text, strict=True)
        assert problem.code in op["responses"][status]["x-codes"], f"{method} {url}: {problem.code} not in x-codes"
        return
    model = _model(op)
    if isinstance(model, type) and issubclass(model, BaseModel):
        model.model_validate_json(resp.text, strict=True)
    else:
        TypeAdapter(model).validate_json(resp.text, strict=True)


async def test_real_answers_match_the_document(live: LiveHall, clock: FakeClock) -> None:
    """A day's visit and every reading route, each answer validated against its documented model."""
    spec = (await live.client.get("/api/v1/openapi.json")).json()
    seen: set[str] = set()

    async def call(method: str, url: str, who: str | None, body: Any = None) -> httpx.Response:
        headers = live.auth(who) if who else {}
        resp = await live.client.request(method.upper(), url, json=body, headers=headers)
        _check(spec, method, url, resp)
        seen.add(_op(spec, method, url)["operationId"])
        return resp

    t = (await call("post", "/api/v1/tickets", "kiosk", {"category": "A"})).json()
    assert (await call("post", "/api/v1/tickets", "kiosk", {"category": "B"})).status_code == 201
    await call("post", "/api/v1/windows/1/sign-in", "w1", {"staff": "0231"})
    await call("post", "/api/v1/windows/1/pause", "w1")
    await call("post", "/api/v1/windows/1/resume", "w1")
    await call("post", "/api/v1/windows/1/call-next", "w1")
    await call("post", "/api/v1/windows/1/recall", "w1")
    await call("post", "/api/v1/windows/1/start", "w1")
    clock.advance(minutes=5)
    await call("post", "/api/v1/windows/1/finish", "w1")
    assert (await call("post", "/api/v1/windows/1/evaluation", "p1", {"level": 5})).status_code == 201
    await call("post", "/api/v1/windows/1/call-next", "w1")  # nobody waiting for window 1: ticket null
    await call("post", f"/api/v1/tickets/{t['id']}/reprint", "kiosk")
    b = (await call("post", "/api/v1/tickets", "kiosk", {"category": "A"})).json()
    await call("post", f"/api/v1/tickets/{b['id']}/cancel", "guide")
    await call("post", "/api/v1/windows/1/sign-out", "w1")
    await call("post", "/api/v1/displays/led1/show", "admin", {"text": "暂停服务"})
    for url in (
        "/api/v1/health",
        "/api/v1/categories",
        "/api/v1/windows",
        "/api/v1/tickets",
        f"/api/v1/tickets/{t['id']}",
        "/api/v1/windows/1/queue",
        "/api/v1/stats",
        "/api/v1/stats/live",
        "/api/v1/sensors/history",
        "/api/v1/climate",
        "/api/v1/alerts",
        "/api/v1/devices",
        "/api/v1/calls",
    ):
        assert (await call("get", url, "admin")).status_code == 200, url
    assert (await call("get", "/api/v1/health", None)).status_code == 200
    # Errors: each answered code is listed for its operation and status (checked in _check).
    assert (await call("get", "/api/v1/windows", None)).status_code == 401
    assert (await call("post", "/api/v1/windows/1/call-next", "kiosk")).status_code == 403
    assert (await call("post", "/api/v1/windows/2/call-next", "w1")).status_code == 403
    assert (await call("post", "/api/v1/windows/1/evaluation", "w1", {"level": 5})).status_code == 403
    assert (await call("get", "/api/v1/tickets/nope", "admin")).status_code == 404
    assert (await call("post", "/api/v1/windows/1/start", "w1")).status_code == 409
    assert (await call("post", "/api/v1/windows/0/call-next", "admin")).status_code == 422
    assert (await call("post", "/api/v1/tickets", "kiosk", {"category": ""})).status_code == 422
    assert (await call("post", "/api/v1/tickets", "kiosk", {"category": "Z"})).status_code == 404
    assert (await call("post", "/api/v1/climate/nowhere", "admin", {"target": 22})).status_code == 404
    assert (await call("get", "/api/v1/calls?limit=0", "admin")).status_code == 422
    assert len(seen) >= 25


async def test_every_operation_is_typed(live: LiveHall) -> None:
    """No `{}` success bodies, no FastAPI 422 HTTPValidationError, security everywhere but /health,
    no bearer header parameter, and the command routes' path parameters carry their limits."""
    spec = (await live.client.get("/api/v1/openapi.json")).json()
    assert set(schemas.COMMAND_RESPONSES) == set(COMMANDS)
    assert {"bearer", "token"} <= set(spec["components"]["securitySchemes"])
    assert spec["security"] == [{"bearer": []}, {"token": []}]
    assert "HTTPValidationError" not in str(spec)
    for path, item in spec["paths"].items():
        if path.startswith("/api/v1/sim/"):
            continue
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert len(ok) == 1, where
            contents = op["responses"][ok[0]]["content"].values()
            assert contents, f"{where}: no success content"
            for content in contents:  # a report comes as JSON, CSV or XLSX
                assert content["schema"], f"{where}: untyped success"
            for status, resp in op["responses"].items():
                if not status.startswith("2"):
                    assert list(resp["content"]) == ["application/problem+json"], where
                    assert resp["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
                    assert resp["x-codes"], f"{where} {status}: no codes listed"
            assert not any(p["name"].lower() == "authorization" for p in op.get("parameters", [])), where
            if path != "/api/v1/health":
                assert "401" in op["responses"], where
    window = _op(spec, "post", "/api/v1/windows/1/call-next")["parameters"][0]["schema"]
    assert (window["type"], window["minimum"], window["maximum"]) == ("integer", 1, 9999)
    code = _op(spec, "get", "/api/v1/tickets/by-qr/x")["parameters"][0]["schema"]
    assert (code["minLength"], code["maxLength"]) == (1, 256)
    body = _op(spec, "post", "/api/v1/tickets")["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["category"]["minLength"] == 1
    assert _op(spec, "get", "/api/v1/health")["security"][0] == {}


async def test_the_ticket_model_documents_every_field_the_api_answers(live: LiveHall) -> None:
    """A field the ticket view grows must be in the documented model too (extra fields are allowed, not hidden)."""
    out = (await live.svc.issue("A")).ticket
    answered = (await live.client.get(f"/api/v1/tickets/{out.id}", headers=live.auth("admin"))).json()
    undocumented = set(answered) - set(schemas.TicketDetail.model_fields)
    assert not undocumented, f"ticket fields missing from hallctl/schemas.py: {sorted(undocumented)}"
