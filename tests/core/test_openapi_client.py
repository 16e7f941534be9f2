"""A client generated from the served document (openapi-python-client, offline) performs a whole
visit against a daemon process and parses every error status it meets as a problem."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.core.core_helpers import Daemon

TOKENS: dict[str, tuple[str, tuple[int, ...]]] = {
    "admin": ("admin", ()),
    "kiosk": ("kiosk", ()),
    "w1": ("window", (1,)),
    "p1": ("pad", (1,)),
}
PACKAGE = "hallctl_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, dict[str, str]]]:
    d = Daemon(tmp_path / "d")
    tokens = asyncio.run(d.create_tokens(TOKENS))
    d.start()
    try:
        yield d, tokens
    finally:
        d.stop()


def generate(url: str, out: Path) -> ModuleType:
    """Generate the client from the live document into ``out`` and import it."""
    doc = out / "openapi.json"
    doc.write_text(httpx.get(f"{url}/api/v1/openapi.json", timeout=10).text, encoding="utf-8")
    config = out / "generator.json"
    # No post hooks (formatters are not the test's business); WAV is bytes to the generator.
    config.write_text(
        json.dumps({"post_hooks": [], "content_type_overrides": {"audio/wav": "application/octet-stream"}})
    )
    result = subprocess.run(
        [GENERATOR, "generate", "--path", doc, "--output-path", out / PACKAGE, "--meta", "none", "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every operation and answer generated
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))


def op(pkg: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{pkg.__name__}.api.default.{name}")


def model(pkg: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{pkg.__name__}.models"), name)


@pytest.mark.timeout(120)
def test_generated_client_visit_and_errors(daemon: tuple[Daemon, dict[str, str]], tmp_path: Path) -> None:
    d, tokens = daemon
    pkg = generate(d.url, tmp_path)
    try:
        clients = {who: pkg.AuthenticatedClient(base_url=d.url, token=t) for who, t in tokens.items()}
        Problem, Ticket = model(pkg, "Problem"), model(pkg, "Ticket")

        # The visit: a kiosk issues, the window calls, starts and finishes, the pad rates, stats count it.
        issued = op(pkg, "ticket_issue").sync_detailed(
            client=clients["kiosk"], body=model(pkg, "TicketIssueIssueArgs")(category="A")
        )
        assert issued.status_code == 201 and isinstance(issued.parsed, Ticket)
        ticket = issued.parsed
        assert ticket.number == "A001" and ticket.state.value == "waiting"
        called = op(pkg, "window_call_next").sync(1, client=clients["w1"])
        assert called.ticket.id == ticket.id and called.ticket.state.value == "called"
        assert op(pkg, "window_start").sync(1, client=clients["w1"]).ticket.state.value == "serving"
        assert op(pkg, "window_finish").sync(1, client=clients["w1"]).ticket.state.value == "done"
        rated = op(pkg, "window_evaluate").sync(
            1, client=clients["p1"], body=model(pkg, "WindowEvaluateEvaluateArgs")(level=5)
        )
        assert rated.evaluation.level == 5 and rated.evaluation.ticket_id == ticket.id
        stats = op(pkg, "stats").sync(client=clients["admin"])
        assert (stats.total.issued, stats.total.done, stats.total.evaluations) == (1, 1, 1)
        got = op(pkg, "get_ticket").sync(ticket.id, client=clients["kiosk"])
        assert got.state.value == "done"

        # Each error status parses as a Problem with its code (no crash on 422's string detail).
        anonymous = pkg.Client(base_url=d.url)
        errors = {
            401: op(pkg, "windows").sync_detailed(client=anonymous),
            403: op(pkg, "window_call_next").sync_detailed(1, client=clients["kiosk"]),
            404: op(pkg, "get_ticket").sync_detailed("no-such-ticket", client=clients["admin"]),
            409: op(pkg, "window_start").sync_detailed(1, client=clients["w1"]),
            422: op(pkg, "window_call_next").sync_detailed(0, client=clients["admin"]),
        }
        codes = {
            401: "missing_token",
            403: "forbidden",
            404: "unknown_ticket",
            409: "no_current_ticket",
            422: "invalid_arguments",
        }
        for status, resp in errors.items():
            assert resp.status_code == status, (status, resp.content)
            assert isinstance(resp.parsed, Problem), (status, resp.parsed)
            assert resp.parsed.status == status and resp.parsed.code == codes[status]
        invalid = op(pkg, "ticket_issue").sync_detailed(
            client=clients["kiosk"], body=model(pkg, "TicketIssueIssueArgs")(category="Z")
        )
        assert invalid.status_code == 404 and invalid.parsed.code == "unknown_category"
    finally:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
