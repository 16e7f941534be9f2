"""The API fuzzed with schemathesis against a daemon process: no input gives a server error.

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests
(valid and invalid by the schema), once with an admin token and once with a kiosk
token. Each must answer below 500 within the timeout, and every error must be
``application/problem+json``. Whether successful answers match the schema is another
suite's business. Deterministic: derandomized Hypothesis, no example database.
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
from schemathesis.core.result import Ok

from tests.hostile.http_helpers import bearer, running_daemon

SIM = {
    "device": [{"id": "idr-k1", "kind": "idcard", "simulate": True}],
    "kiosk": [{"id": "k1", "categories": ["A"], "reader": "idr-k1"}],
}
EXAMPLES = 8  # per operation and generation mode
SKIP = {"/api/v1/events"}  # an endless stream (SSE): no request ends by itself
BUDGET_S = 180.0  # a hang is caught per request (10 s); this only bounds the whole run


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
                resp = case.call(base_url=url, headers=bearer(token), timeout=10)
                where = f"{case.method} {case.formatted_path} -> {resp.status_code}"
                assert resp.status_code < 500, f"{where}: {resp.text[:300]}"
                if resp.status_code >= 400:
                    ctype = resp.headers.get("content-type", [""])[0]
                    assert ctype.startswith("application/problem+json"), f"{where}: {ctype}"

            try:
                run()
            except Unsatisfiable:
                pass  # no request is invalid by the schema (only free-form string parameters)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
            except OSError as exc:  # a hang (requests timeout) or a dropped connection is a finding too
                failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {exc}"[:300])
            assert time.monotonic() - started < BUDGET_S, "fuzz run over its time budget"
    return failures, calls


@pytest.mark.timeout(300)
def test_api_fuzz_no_server_errors(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "d", **SIM) as (d, tokens):
        for who in ("admin", "kiosk"):
            failures, calls = _fuzz(d.url, tokens[who])
            assert calls > 200
            assert not failures, f"{who}: {len(failures)} failing operations:\n" + "\n".join(failures)
        log = d.log.read_text()
        assert "Traceback" not in log, log[-3000:]
