"""docs/integrations/python_client.py, run as a program (paho-mqtt 2, MQTT 5) against Mosquitto + hallctl."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.integrations.conftest import EXAMPLES, HALL, LiveExample


def client(live: LiveExample, *args: str) -> tuple[int, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "python_client.py"),
            "--port",
            str(live.broker.port),
            "--hall",
            HALL,
            "--timeout",
            "10",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stderr == "", out.stderr
    return out.returncode, json.loads(out.stdout)


def test_python_client_reads_waiting_and_calls_next(live: LiveExample) -> None:
    """Waiting counts from the retained states; call_next answered on the correlated reply; a refusal too."""
    live.issue("A")
    live.issue("A")
    live.issue("B")
    code, counts = client(live, "waiting", "--categories", "3")
    assert code == 0 and counts == {"A": 2, "B": 1, "C": 0}
    code, reply = client(live, "call-next", "1")
    assert code == 0, reply
    assert reply["ok"] is True and reply["command"] == "window.call_next"
    assert reply["ticket"]["number"] == "A001" and reply["ticket"]["state"] == "called"
    assert live.window(1)["ticket"] == "A001"
    # Another client (its own reply namespace): A001 is finished, A002 called.
    code, reply = client(live, "--client", "frontdesk", "call-next", "1")
    assert code == 0 and reply["ticket"]["number"] == "A002"
    # A window the hall does not have: the refusal comes back as the correlated reply.
    code, reply = client(live, "call-next", "99")
    assert code == 1 and reply["ok"] is False, reply
    assert reply["error"]["code"] == "unknown_window"
