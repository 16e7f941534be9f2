"""A broker that refuses the hall at boot holds up its start for one connection attempt, not more.

The MQTT component waits (bounded) for its first connection so that ``online`` and the
snapshot are out when the hall serves. With the broker down that wait used to run to its
3 s bound while the reconnect loop kept trying; after a kill -9 that alone broke issue 12's
"serving again within 2 s". Here nothing listens on the broker's loopback port (every
connect is refused at once) and the hall retries after 1.2-2.4 s (backoff with jitter), so
waiting out the old 3 s bound always saw a second attempt: the attempts logged while
``start()`` runs show whether it waited past the first one.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from hallctl.daemon import Hall
from hallctl.mqtt import MqttBridge
from tests.mqtt.mqtt_helpers import make_config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: a connect is refused


async def test_start_returns_after_the_first_failed_connect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(tmp_path, "h1", f"mqtt://127.0.0.1:{closed_port()}", reconnect_min_s=2.4, reconnect_max_s=2.4)
    hall = Hall(cfg)
    try:
        with caplog.at_level(logging.WARNING, logger="hallctl.mqtt.bridge"):
            await hall.start()
            attempts = [r for r in caplog.records if "unreachable or lost" in r.getMessage()]
        bridge = hall.part("mqtt")
        assert isinstance(bridge, MqttBridge)
        assert bridge.health()["connected"] is False  # it serves without the broker
    finally:
        await hall.stop()
    assert len(attempts) == 1, f"start() sat through {len(attempts)} failed connection attempts"
