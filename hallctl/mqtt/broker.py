"""Embedded MQTT broker (amqtt), so ``hallctl demo`` and a small hall need nothing else.

Why amqtt: it is pure Python and runs on the daemon's own event loop, so a demo
needs no system package. Its limits decide how we use it: it speaks MQTT 3.1.1
only (the daemon connects to it with 3.1.1), and it is started here without
authentication, so it listens on localhost unless the operator names another
address. Production halls should run Mosquitto or EMQX (see ``docs/mqtt.md``).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import BrokerError

log = logging.getLogger(__name__)


class EmbeddedBrokerError(Exception):
    """The embedded broker could not start (port taken, bad address)."""


class EmbeddedBroker:
    """One amqtt listener; ``port`` is the bound port (useful when asked for port 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> int:
        if not _is_loopback(self.host):
            log.warning(
                "embedded MQTT broker listens on %s without authentication; "
                "use an external broker with an ACL for anything beyond a demo",
                self.host,
            )
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.requested_port}"}},
            # Only anonymous auth: the default set adds $SYS publishing and packet logging we do not want.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:
            raise EmbeddedBrokerError(
                f"cannot start the embedded MQTT broker on {self.host}:{self.requested_port}: {exc}"
            ) from exc
        self._broker = broker
        self.port = _bound_port(broker, self.requested_port)
        log.info("embedded MQTT broker (MQTT 3.1.1) listening on %s", self.url)
        return self.port

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            await broker.shutdown()
        except (BrokerError, OSError, RuntimeError) as exc:
            log.warning("embedded MQTT broker did not shut down cleanly: %s", exc)


def _bound_port(broker: Broker, requested: int) -> int:
    """amqtt keeps no public handle on its sockets; read the asyncio server it made."""
    server = getattr(broker, "_servers", {}).get("default")
    instance = getattr(server, "instance", None)
    sockets = getattr(instance, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    return requested


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
