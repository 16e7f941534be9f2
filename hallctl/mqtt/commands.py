"""The MQTT command transport: ``cmd/...`` topics to the command table, replies back.

Topic and payload become a command name and arguments for
:func:`hallctl.commands.dispatch`; the topics are generated from the command
table (the one the HTTP routes are generated from too). Replies go only to plain
topics outside our tree or under ``<root>/reply/``.
"""

from __future__ import annotations

import json
from typing import Any

from hallctl.auth import Principal
from hallctl.commands import COMMANDS, CommandError
from hallctl.errors import HallctlError

MQTT_PRINCIPAL = Principal(role="admin", label="mqtt")


def command_for_topic(root: str, topic: str) -> tuple[str, dict[str, str]]:
    """``hallctl/<hall>/cmd/window/3/call_next`` → ``("window.call_next", {"window": "3"})``.

    The topics are generated from the command table (each command's ``mqtt``
    template); topic parameters come back as strings and are validated by the
    command's argument model, like the HTTP path parameters.
    """
    parts = topic.removeprefix(f"{root}/cmd/").split("/")
    for cmd in COMMANDS.values():
        template = cmd.mqtt.split("/")
        if len(template) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(template, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return cmd.name, params
    raise CommandError("unknown_command", f"unknown command topic cmd/{'/'.join(parts)}")


def topic_for(root: str, name: str, params: dict[str, Any]) -> str:
    """The command topic of ``name`` with its parameters filled in (the reverse of :func:`command_for_topic`)."""
    return f"{root}/cmd/" + COMMANDS[name].mqtt.format(**params)


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
