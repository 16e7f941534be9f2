"""The API fuzzed with schemathesis against a daemon process: the document tells the truth.

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests,
valid by the schema (positive mode) and invalid (negative mode), once with an admin token
and once with a kiosk token, and each answer goes through schemathesis's standard checks:
no server error, status code, content type, response headers and response body as
documented, invalid data rejected, valid data accepted (where that can hold, see
:data:`STATEFUL`), a request without credentials refused. Deterministic: derandomized
Hypothesis, no example database.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from tests.hostile.http_helpers import bearer, running_daemon

SIM = {
    "device": [{"id": "idr-k1", "kind": "idcard", "simulate": True}],
    "kiosk": [{"id": "k1", "categories": ["A"], "reader": "idr-k1"}],
}
EXAMPLES = 6  # per operation and generation mode
SKIP = {"/api/v1/events"}  # an endless stream (SSE): no request ends by itself
BUDGET_S = 120.0  # a hang is caught per request (10 s); this only bounds the whole run
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    ignored_auth,
]
# Valid data cannot be accepted by design where the answer depends on the hall's state or on
# who asks: every command (a kiosk token may not call a window; a random ticket id or window
# number does not exist; call-next needs someone waiting) and the reads of one resource by id.
# These keep every other check; their refusals must still be documented statuses with codes.
STATEFUL_READS = {
    "/api/v1/kiosks/{kiosk_id}",
    "/api/v1/tickets/{ticket_id}",
    "/api/v1/windows/{window}/queue",
    "/api/v1/voice/{ticket_id}.wav",
}


def _stateful(op: Any) -> bool:
    return "x-command" in op.definition.raw or op.path in STATEFUL_READS


def _run(op: Any, mode: GenerationMode, url: str, token: str) -> int:
    """Up to :data:`EXAMPLES` requests of one operation in one mode, each through :data:`CHECKS`."""
    excluded = [positive_data_acceptance] if _stateful(op) else []
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        resp = case.call_and_validate(
            base_url=url, headers=bearer(token), timeout=10, checks=CHECKS, excluded_checks=excluded
        )
        if resp.status_code >= 400:  # beyond schemathesis: the problem's code is one the document lists
            documented = op.definition.raw["responses"][str(resp.status_code)].get("x-codes")
            code = resp.json()["code"]
            # No x-codes: not enumerated (only the simulators' routes; tests/core/test_openapi_models.py).
            where = f"{case.method} {case.formatted_path} -> {resp.status_code} {code}"
            assert documented is None or code in documented, where

    run()
    return calls


def _fuzz(url: str, token: str) -> tuple[list[str], int]:
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json", timeout=10)
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"invalid operation in the schema: {result}"
        op = result.ok()
        if op.path in SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                calls += _run(op, mode, url, token)
            except Unsatisfiable:
                pass  # no request is invalid by the schema (only free-form string parameters)
            except (AssertionError, FailureGroup) as exc:
                failures.append(f"{op.method.upper()} {op.path} [{mode.value}]: " + str(exc).strip()[:600])
            except OSError as exc:  # a hang (requests timeout) or a dropped connection is a finding too
                failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {exc}"[:300])
            assert time.monotonic() - started < BUDGET_S, "fuzz run over its time budget"
    return failures, calls


@pytest.mark.timeout(300)
def test_api_fuzz_conforms(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "d", **SIM) as (d, tokens):
        for who in ("admin", "kiosk"):
            failures, calls = _fuzz(d.url, tokens[who])
            assert not failures, f"{who}: {len(failures)} failing operations:\n" + "\n".join(failures)
            assert calls > 200
        log = d.log.read_text()
        assert "Traceback" not in log, log[-3000:]
