"""Where and how the MQTT component connects: target from config, backoff between attempts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt

from hallctl.config import Config


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to connect; ``display_url`` never carries credentials."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    protocol: aiomqtt.ProtocolVersion
    embedded: bool

    @property
    def display_url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def backoff_delay(attempt: int, low: float, high: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter in [half, full] of the capped delay."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return float(ceiling * (0.5 + 0.5 * rng()))


def target_for(cfg: Config, embedded_port: int | None, embedded_login: tuple[str, str] | None = None) -> Target:
    m = cfg.mqtt
    if m.url is None:
        assert embedded_port is not None
        user, password = embedded_login if embedded_login is not None else (None, None)
        # The embedded broker is Mosquitto: MQTT 5 unless the config asks for 3.1.1.
        proto = aiomqtt.ProtocolVersion.V311 if m.protocol == "3.1.1" else aiomqtt.ProtocolVersion.V5
        host = "127.0.0.1" if m.embedded_host == "localhost" else m.embedded_host
        return Target(host, embedded_port, user, password, False, proto, True)
    parts = urlsplit(m.url)
    tls = parts.scheme == "mqtts"
    proto = aiomqtt.ProtocolVersion.V311 if m.protocol == "3.1.1" else aiomqtt.ProtocolVersion.V5
    return Target(
        host=parts.hostname or "localhost",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        protocol=proto,
        embedded=False,
    )


class Connection:
    """One live client; ``lost`` fires when it is gone so waiting publishes fail at once."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.lost = asyncio.Event()
