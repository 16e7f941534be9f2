"""The MQTT command transport: ``cmd/...`` topics to the command table, replies back.

Topic and payload become a command name and arguments for
:func:`hallctl.commands.dispatch` (the table the HTTP API uses too); replies go
only to plain topics outside our tree or under ``<root>/reply/``.
"""

from __future__ import annotations

import json
from typing import Any

from hallctl.auth import Principal
from hallctl.commands import CommandError
from hallctl.errors import HallctlError

WINDOW_ACTIONS = (
    "call_next",
    "call",
    "recall",
    "start",
    "finish",
    "no_show",
    "transfer",
    "pause",
    "resume",
    "sign_in",
    "sign_out",
    "evaluate",
)
MQTT_PRINCIPAL = Principal(role="admin", label="mqtt")


def command_for_topic(root: str, topic: str) -> tuple[str, dict[str, Any]]:
    """``hallctl/<hall>/cmd/window/3/call_next`` → ``("window.call_next", {"window": 3})``."""
    parts = topic.removeprefix(f"{root}/cmd/").split("/")
    match parts:
        case ["ticket", "issue"]:
            return "ticket.issue", {}
        case ["window", number, action] if action in WINDOW_ACTIONS:
            if not number.isdigit():
                raise CommandError("invalid_arguments", f"window: not a window number: {number!r}")
            return f"window.{action}", {"window": int(number)}
        case ["display", display, "show"]:
            return "display.show", {"display": display}
        case ["climate", zone, "set"]:
            return "climate.set", {"zone": zone}
    raise CommandError("unknown_command", f"unknown command topic cmd/{'/'.join(parts)}")


def reply_topic_allowed(root: str, topic: str) -> bool:
    """Replies go to plain topics outside our own tree, or under ``<root>/reply/``.

    Without this a client could make the daemon overwrite its own state or status
    topics, which the ACL lets the daemon (but not the client) write.
    """
    if not topic or len(topic) > 512 or "+" in topic or "#" in topic or topic.startswith("$") or "\0" in topic:
        return False
    if topic.startswith("hallctl/"):
        return topic.startswith(f"{root}/reply/")
    return True


def json_object(payload: Any) -> dict[str, Any]:
    raw = payload if isinstance(payload, bytes | bytearray) else (b"" if payload is None else str(payload).encode())
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError("malformed_json", f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError("malformed_json", "payload must be a JSON object")
    return data


def error_reply(exc: HallctlError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
