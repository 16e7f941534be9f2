"""Error types of the hall daemon, each with a stable snake_case ``code``.

The API maps them to problem+json (status from ``http_status``) and the MQTT
command handler to ``{"ok": false, "error": {...}}``; one mapping each. Messages
are shown to visitors and staff, so they never carry names or ID numbers.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HallctlError(Exception):
    http_status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(
        self, code: str, message: str, message_en: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_en = message_en or message
        # Members the answer carries besides the message (problem+json members, MQTT error keys),
        # e.g. the choices a clerk has: the page builds its buttons from them, not from the text.
        self.extra = extra or {}


class NotFound(HallctlError):
    http_status = 404
    title = "Not found"


class Conflict(HallctlError):
    http_status = 409
    title = "Conflict"


class Refused(HallctlError):
    """The request is understood but policy says no (closed, limit reached, too early)."""

    http_status = 422
    title = "Refused"


class Forbidden(HallctlError):
    http_status = 403
    title = "Forbidden"


class Unauthorized(HallctlError):
    http_status = 401
    title = "Unauthorized"


class StoreUnavailable(HallctlError):
    """The database refused the write (locked, disk full, I/O error); nothing was changed."""

    http_status = 503
    title = "Service unavailable"


class ListenRefused(HallctlError):
    """The API cannot listen where configured (port taken by another daemon or demo, address not here).

    The CLI prints the message as one line and exits 1, so systemd retries (the other
    process may be on its way out), unlike a refused store (exit 2).
    """

    http_status = 503
    title = "Service unavailable"


class SimulatorUnavailable(HallctlError):
    """A demo simulator cannot act now (its virtual device's service is not there)."""

    http_status = 503
    title = "Service unavailable"


class MqttUnavailable(HallctlError):
    """The hall's MQTT link is down (or there is none), so a message for a device could not be sent."""

    http_status = 503
    title = "Service unavailable"


class MqttClientIncompatible(HallctlError):
    """The installed paho-mqtt lacks the internals the MQTT event path uses (hallctl/mqtt/fastpath.py)."""

    http_status = 500
    title = "Internal error"
