"""Item 19: unauthenticated /health shows states only; details (paths, errors, URLs, bus) need admin."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.hostile.http_helpers import bearer, running_daemon

SIM = {
    "device": [{"id": "idr-k1", "kind": "idcard", "simulate": True}],
    "kiosk": [{"id": "k1", "categories": ["A"], "reader": "idr-k1"}],
}


def test_health_without_admin_shows_states_only(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "d", **SIM) as (d, tokens):
        public = httpx.get(f"{d.url}/api/v1/health").json()
        kiosk = httpx.get(f"{d.url}/api/v1/health", headers=bearer(tokens["kiosk"])).json()
        full = httpx.get(f"{d.url}/api/v1/health", headers=bearer(tokens["admin"])).json()
        for view in (public, kiosk):
            assert view["status"] in ("ok", "degraded")
            assert view["store"] == {"ok": True}
            assert set(view["devices"]) == {"idr-k1"}
            assert set(view["devices"]["idr-k1"]) == {"state"}
            assert set(view["mqtt"]) <= {"ok", "connected"} and "connected" in view["mqtt"]
            text = json.dumps(view)
            assert "/dev/" not in text and "mqtt://" not in text and "bus" not in view
            assert "last_error" not in text and "detail" not in text
        # the admin sees the details
        assert "detail" in full["devices"]["idr-k1"] and "bus" in full and "url" in full["mqtt"]
        assert "write_errors" in full["store"]
