"""FastAPI's copies of the command routes are made at their first use, not at start (issue 12, goal 4).

The command routes are served in front of FastAPI (``CommandRoutes``); FastAPI's own routes for
them matter only for the OpenAPI document and for requests FastAPI answers by path (another
method: 405, a trailing slash: 307). Those answers must be what they were when the routes were
made at start, from the very first such request, and health polling must not make them.
"""

from __future__ import annotations

from typing import Any

import pytest

from hallctl import commands
from hallctl.http.lazy import RouterSlot
from tests.core.conftest import HallFactory
from tests.core.core_helpers import LiveHall


def command_routes(live: LiveHall) -> list[str]:
    """The command names of FastAPI's command routes, in the app's route order."""
    app = live.hall.api.app
    assert app is not None
    extras: list[dict[str, Any]] = [getattr(r, "openapi_extra", None) or {} for r in app.routes]
    return [e["x-command"] for e in extras if "x-command" in e]


def route_paths(live: LiveHall) -> list[str]:
    app = live.hall.api.app
    assert app is not None
    return [str(getattr(r, "path", "")) for r in app.routes]


@pytest.mark.parametrize(
    ("method", "path", "status", "location"),
    [
        ("DELETE", "/api/v1/windows/1/call-next", 405, None),
        ("GET", "/api/v1/windows/1/call-next", 405, None),
        ("POST", "/api/v1/windows/1/call-next/", 307, "/api/v1/windows/1/call-next"),
        ("POST", "/api/v1/tickets//", 307, "/api/v1/tickets"),
    ],
    ids=["delete-405", "get-405", "slash-307", "slashes-307"],
)
async def test_first_request_fastapi_answers_for_a_command_path_is_as_before(
    hall_factory: HallFactory, method: str, path: str, status: int, location: str | None
) -> None:
    live = await hall_factory()
    assert (await live.client.get("/api/v1/health")).status_code == 200
    assert command_routes(live) == [], "made at start (or by a health request): the start-up pays for them again"
    r = await live.client.request(method, path, follow_redirects=False)
    # Without FastAPI's command routes these were 404 not_found.
    assert r.status_code == status, r.text
    if location is None:
        assert r.json()["code"] == "method_not_allowed"
    else:
        assert r.headers["location"].endswith(location)
    # Made once, in the table's order, where create_app used to put them: before the read routes.
    assert command_routes(live) == list(commands.COMMANDS)
    paths = route_paths(live)
    first = paths.index("/api/v1" + next(iter(commands.COMMANDS.values())).http.path)
    assert first < paths.index("/api/v1/health")


async def test_the_document_lists_every_command_with_its_plain_operation_id(live: LiveHall) -> None:
    assert (await live.client.get("/api/v1/health")).status_code == 200
    assert command_routes(live) == []
    doc = (await live.client.get("/api/v1/openapi.json")).json()
    ops = {op["x-command"]: op for item in doc["paths"].values() for op in item.values() if "x-command" in op}
    assert sorted(ops) == sorted(commands.COMMANDS)
    for name, op in ops.items():
        assert op["operationId"] == name.replace(".", "_")
    # A second document and a command's own answer do not add them again.
    assert (await live.client.get("/api/v1/openapi.json")).json() == doc
    assert command_routes(live) == list(commands.COMMANDS)


async def test_a_command_is_served_without_fastapis_copies(live: LiveHall) -> None:
    r = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert r.status_code == 201, r.text
    assert command_routes(live) == []


# ---- the rarely used routers (console, back office, reports, staff photos): hallctl/http/lazy.py ----


def slots(live: LiveHall) -> list[tuple[int, str]]:
    """(position, prefix) of the routers still to be made."""
    app = live.hall.api.app
    assert app is not None
    return [(i, r.prefix) for i, r in enumerate(app.routes) if isinstance(r, RouterSlot) and r.prefix is not None]


@pytest.mark.parametrize(
    ("path", "code", "prefix"),
    [
        ("/api/v1/admin/accounts", "not_logged_in", "/api/v1/admin"),
        ("/api/v1/reports/daily", "missing_token", "/api/v1/reports"),
        ("/api/v1/staff/0231/photo", "missing_token", "/api/v1/staff"),
    ],
)
async def test_a_rare_router_is_made_in_its_place_at_its_first_request(
    live: LiveHall, path: str, code: str, prefix: str
) -> None:
    assert (await live.client.get("/api/v1/health")).status_code == 200
    before = slots(live)
    assert {p for _, p in before} == {"/api/v1/admin", "/api/v1/reports", "/api/v1/staff"}, (
        "made at start (or by health): the start-up pays for them again"
    )
    app = live.hall.api.app
    assert app is not None
    n = len(app.routes)
    r = await live.client.get(path)
    assert (r.status_code, r.json()["code"]) == (401, code), r.text
    # Made in their slots (the route order kept), only the ones under that prefix.
    assert len(app.routes) == n
    assert [s for s in before if s[1] != prefix] == slots(live)
    # The console's modules came with it, not before (tests/core/test_footprint_imports.py checks a real start).
    assert (await live.client.get(path)).json()["code"] == code


async def test_the_document_makes_every_rare_router(live: LiveHall) -> None:
    doc = (await live.client.get("/api/v1/openapi.json")).json()
    assert slots(live) == []
    assert any(p.startswith("/api/v1/reports/") for p in doc["paths"])
    r = await live.client.post("/api/v1/admin/login", json={"name": "nobody", "password": "x" * 12})
    assert r.status_code == 401, r.text
