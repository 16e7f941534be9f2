"""Issue 12 goal 4: a production daemon imports what its config uses, nothing more.

A real ``hallctl run`` process (the CLI's own start path, in a subprocess) is asked for its
``sys.modules`` after it serves: a wrapper installs a SIGUSR1 handler that writes them to
a file, then runs ``python -m hallctl.cli -c FILE run`` unchanged. No speed is asserted;
the memory and start-up figures are measured by bench/footprint.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.core_helpers import REPO, config_dict, free_port, to_toml

DEADLINE_S = 30.0

# Never in a production process: simulators, the demo, the browser and fuzzing tools.
ALWAYS_FORBIDDEN = ("hallctl.simulation", "hallctl.demo", "drivers.sim", "playwright", "schemathesis")
# Only with the device that needs them: pyscard (badge reader), pymodbus (Modbus sensor),
# python-escpos with PIL/qrcode/barcode (a printer, and then only from its first ticket).
DEVICE_LIBS = ("smartcard", "pymodbus", "escpos", "PIL", "qrcode", "barcode")
# Only with a [[climate_unit]] of the kind that needs them: pymodbus (modbus), bacpypes3 (bacnet),
# each air-conditioning driver module (drivers.ac_*, imported inside its kind's factory in
# hallctl/climate/units.py). The voice renderer's espeak-ng library only in its child process.
AC_DRIVERS = ("drivers.ac_modbus", "drivers.ac_bacnet", "drivers.ac_mqtt", "drivers.ac_profile")
AC_LIBS = ("pymodbus", "bacpypes3", *AC_DRIVERS)
VOICE_LIBS = ("espeakng_loader",)
# Only with a [[climate_zone]]: the climate package (controller, meter, unit drivers) and drivers.aircon.
CLIMATE = ("hallctl.climate", "drivers.aircon")
# Only at the first request for a document: the response models and the documents' builders.
DOCUMENTS = ("hallctl.schemas", "hallctl.http.openapi", "hallctl.mqtt.asyncapi")
# Never in the daemon: FastAPI imports pydantic's v1 API only to refuse v1 models (hallctl has none).
PYDANTIC_V1 = ("pydantic.v1",)
# Only when the console is used: TOTP, password hashing, config write-back, XLSX reports.
CONSOLE_LIBS = ("pyotp", "argon2", "tomlkit", "openpyxl")
# Only at the first request under their paths (or the first document): the console's, back office's,
# reports' and staff photos' routes (hallctl/http/lazy.py) and the reports package (/stats, /reports/...).
RARE_ROUTES = ("hallctl.http.admin", "hallctl.http.backoffice", "hallctl.http.reports", "hallctl.reports")
# Only at the first WebSocket client (the pages stream over SSE): the websockets library, and
# uvicorn (its WebSocket protocol; the daemon's HTTP is hallctl.http.wire), with click, which
# uvicorn's package imports (≈3 MiB of idle RSS together).
WEBSOCKETS = ("websockets", "uvicorn", "click")

WRAPPER = """
import json, runpy, signal, sys
out = sys.argv.pop(1)
def dump(*_):
    import gc
    with open(out + ".gc", "w") as f:
        json.dump([gc.isenabled(), gc.get_freeze_count()], f)
    with open(out + ".tmp", "w") as f:
        json.dump(sorted(k for k, m in sys.modules.items() if m is not None), f)  # None: an import refused
    import os
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["hallctl", *sys.argv[1:]]
runpy.run_module("hallctl.cli", run_name="__main__", alter_sys=True)
"""

WS_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
READER = {"id": "k1-idr", "kind": "idcard", "port": "/dev/hallctl-test-absent/k1-idr", "baudrate": 115200}
PRINTER = {"id": "k1-prn", "kind": "printer", "port": "/dev/hallctl-test-absent/k1-prn", "baudrate": 115200}


def modules_of_serving_daemon(
    tmp_path: Path, then: Callable[[str], None] | None = None, after: list[str] | None = None, **over: Any
) -> list[str]:
    """The serving daemon's modules; ``then`` is called with its URL after they are read, while it serves.

    With ``after``, the modules once ``then`` has run are read again into it.
    """
    port = free_port()
    data = config_dict(store={"path": str(tmp_path / "hallctl.db")}, api={"port": port}, **over)
    cfg = tmp_path / "hallctl.toml"
    cfg.write_text(to_toml(data), encoding="utf-8")
    out = tmp_path / "modules.json"
    log = tmp_path / "daemon.log"
    with log.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(out), "-c", str(cfg), "run"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert proc.poll() is None, f"daemon exited {proc.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"daemon not serving in time: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # bounded readiness poll of an external process
        # Health answers as soon as the API listens, which can be before the last component has
        # started; `hallctl run` pauses the cyclic garbage collector for its start-up only (and keeps
        # the start-up's objects frozen until a second after serving), so ask again until the
        # start-up is over: serving, it must be on and nothing may stay frozen (within the deadline).
        while True:
            out.unlink(missing_ok=True)
            proc.send_signal(signal.SIGUSR1)
            while not out.exists():
                assert time.monotonic() < deadline, "no module list written"
                time.sleep(0.02)  # bounded poll for the file the process writes
            enabled, frozen = json.loads(Path(str(out) + ".gc").read_text())
            if enabled is True and frozen == 0:
                break
            assert time.monotonic() < deadline, f"serving with the garbage collector off or {frozen} objects frozen"
            time.sleep(0.05)  # bounded: the start-up ends within the deadline or the test fails
        modules: list[str] = json.loads(out.read_text())
        if then is not None:
            then(f"http://127.0.0.1:{port}")
            if after is not None:
                out.unlink()
                proc.send_signal(signal.SIGUSR1)
                while not out.exists():
                    assert time.monotonic() < deadline + DEADLINE_S, "no module list written after `then`"
                    time.sleep(0.02)  # bounded poll for the file the process writes
                after.extend(json.loads(out.read_text()))
        return modules
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize(
    ("devices", "kiosk"),
    [
        ([READER], {"id": "k1", "categories": ["A"], "reader": "k1-idr"}),
        ([READER, PRINTER], {"id": "k1", "categories": ["A"], "reader": "k1-idr", "printer": "k1-prn"}),
    ],
    ids=["reader-only", "reader-and-offline-printer"],
)
def test_plain_hall_imports_no_simulator_demo_or_unused_device_library(
    tmp_path: Path, devices: list[dict[str, Any]], kiosk: dict[str, Any]
) -> None:
    def documents_still_served(url: str) -> None:
        # Imported at the first request, in a process where FastAPI cannot import pydantic.v1.
        for doc in ("openapi.json", "asyncapi.json"):
            r = httpx.get(f"{url}/api/v1/{doc}", timeout=30)
            assert r.status_code == 200 and r.json()["info"]["title"], doc
        assert httpx.get(f"{url}/api/v1/climate", timeout=5).status_code in (200, 401)
        # The first WebSocket client gets the protocol imported then: the upgrade is answered, not refused.
        with httpx.stream("GET", f"{url}/ws", headers=WS_UPGRADE, timeout=5) as r:
            assert r.status_code in (101, 403), r.status_code

    after: list[str] = []
    modules = modules_of_serving_daemon(tmp_path, documents_still_served, after, device=devices, kiosk=[kiosk])
    assert "hallctl.devices.manager" in modules, "the devices were not started: the check proves nothing"
    assert loaded(modules, ALWAYS_FORBIDDEN) == []
    # Neither config has a badge reader or a Modbus sensor; the printer is offline, never printed.
    assert loaded(modules, DEVICE_LIBS) == []
    # No climate unit at all, and speech is rendered in a child process.
    assert loaded(modules, AC_LIBS + VOICE_LIBS) == []
    # No climate zone, no WebSocket client, nobody asked for a document (issue 12, goal 4: ≈4 MiB of idle RSS).
    assert loaded(modules, CLIMATE + DOCUMENTS + PYDANTIC_V1 + WEBSOCKETS) == []
    # Nobody signed in to the console (about 1 MiB: pyotp alone is 0.8), nobody asked for its routes or a report.
    assert loaded(modules, CONSOLE_LIBS + RARE_ROUTES) == []
    # The WebSocket upgrade was answered by uvicorn's protocol, imported for it (the check above means something).
    assert {"uvicorn", "websockets"} <= set(after), loaded(after, WEBSOCKETS)


def test_climate_unit_imports_only_its_own_kind(tmp_path: Path) -> None:
    """An MQTT air-conditioner does not drag in the Modbus or BACnet stacks (~10 MB, issue 12)."""
    unit = {"id": "ac1", "zone": "floor1", "kind": "mqtt", "command_topic": "hall/ac1/set", "state_topic": "hall/ac1"}
    modules = modules_of_serving_daemon(tmp_path, climate_zone=[{"id": "floor1"}], climate_unit=[unit])
    assert "hallctl.climate.zones" in modules, "the climate component did not start: the check proves nothing"
    assert loaded(modules, ("pymodbus", "bacpypes3", "drivers.ac_modbus", "drivers.ac_bacnet")) == []
    assert loaded(modules, ALWAYS_FORBIDDEN + VOICE_LIBS + DOCUMENTS + PYDANTIC_V1 + RARE_ROUTES) == []
