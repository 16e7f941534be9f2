"""docs/integrations/node-red/flow.json: its MQTT calls, made with mqtt.js 5 (Node-RED's client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.core.core_helpers import REPO
from tests.integrations.conftest import EXAMPLES, HALL, LiveExample

HERE = Path(__file__).parent
FLOW = EXAMPLES / "node-red" / "flow.json"


def node() -> str:
    exe = shutil.which("node")
    assert exe is not None, "node is missing: run scripts/setup.sh (Debian nodejs)"
    assert (HERE / "node_modules" / "mqtt").is_dir(), "mqtt.js is missing: run scripts/setup.sh (npm ci)"
    return exe


def test_flow_topics_are_the_halls() -> None:
    """The flow's topics are hallctl's: state filter, command topic, a reply topic in the reply namespace."""
    nodes = {n["id"]: n for n in json.loads(FLOW.read_text(encoding="utf-8"))}
    out = nodes["hallctl_call_out"]
    assert out["topic"] == f"hallctl/{HALL}/cmd/window/1/call_next"
    assert out["respTopic"].startswith(f"hallctl/{HALL}/reply/nodered/")
    assert nodes["hallctl_queue_in"]["topic"] == f"hallctl/{HALL}/queue/+/state"
    assert nodes["hallctl_broker"]["protocolVersion"] == "5"  # response topic and correlation data need v5


def test_node_red_flow_calls_next_and_shows_waiting(live: LiveExample) -> None:
    """The button's publish (response topic + correlation data) calls A001; the counts are the queue's."""
    live.issue("A")
    live.issue("A")
    out = subprocess.run(
        [node(), str(HERE / "run_flow.js"), str(FLOW), live.broker.url, "3", "10"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["queues"] == {"A": 2, "B": 0, "C": 0}
    assert result["reply_topic"] == f"hallctl/{HALL}/reply/nodered/window-1"
    assert result["correlation"] == "nodered-window-1"
    reply = result["reply"]
    assert reply["ok"] is True and reply["command"] == "window.call_next"
    assert reply["ticket"]["number"] == "A001"
    assert live.window(1)["ticket"] == "A001"
