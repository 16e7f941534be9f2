"""The MQTT command transport: ``cmd/...`` topics to the command table, replies back.

Topic and payload become a command name and arguments for
:func:`hallctl.commands.dispatch`; the topics are generated from the command
table (the one the HTTP routes are generated from too). Replies go only to the
reply namespace ``<root>/reply/<client>/...`` (docs/mqtt.md "Replies"), the tree
the generated broker ACL lets client ``<client>`` read and nobody else.
"""

from __future__ import annotations

import json
import re
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
    name = "/".join(parts)
    raise CommandError("unknown_command", f"没有此命令主题：cmd/{name}", f"unknown command topic cmd/{name}")


def topic_for(root: str, name: str, params: dict[str, Any]) -> str:
    """The command topic of ``name`` with its parameters filled in (the reverse of :func:`command_for_topic`)."""
    return f"{root}/cmd/" + COMMANDS[name].mqtt.format(**params)


# A reply topic is ``<root>/reply/<client>`` or below it; ``<client>`` is one segment of these characters.
REPLY_CLIENT = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
MAX_REPLY_TOPIC = 256


def reply_namespace(root: str) -> str:
    return f"{root}/reply/"


def reply_topic_refusal(root: str, topic: object) -> str | None:
    """Why ``topic`` may not receive a reply, or None when it may.

    Replies go only to ``<root>/reply/<client>[/...]``: anywhere else the daemon, which
    may write every retained topic, would publish for the client (into
    ``homeassistant/.../config``, onto our state topics, into another hall's tree).
    """
    if not isinstance(topic, str) or not topic:
        return "not a topic string"
    if len(topic) > MAX_REPLY_TOPIC:
        return f"longer than {MAX_REPLY_TOPIC} characters"
    if "+" in topic or "#" in topic or "\0" in topic:
        return "wildcard or NUL"
    if topic.startswith("$"):
        return "system topic"
    prefix = reply_namespace(root)
    if not topic.startswith(prefix):
        return f"outside the reply namespace {prefix}<client>/"
    client, *rest = topic.removeprefix(prefix).split("/")
    if not REPLY_CLIENT.fullmatch(client):
        return "the client segment must be 1-64 of A-Z a-z 0-9 _ . : @ -"
    if "" in rest:
        return "empty topic level"
    return None


def reply_topic_allowed(root: str, topic: object) -> bool:
    return reply_topic_refusal(root, topic) is None


def expired(message_expiry_s: int | None, arrived: float, now: float) -> bool:
    """MQTT 5 Message Expiry Interval: has it run out between the message's arrival and ``now``?

    The broker sends what is left of the interval and drops messages that expired in
    its queue; this covers the time the command waited in the daemon (monotonic seconds).
    """
    return message_expiry_s is not None and now - arrived > message_expiry_s


# Nesting deeper than this is no command of ours; checked before parsing, so a payload of
# 100,000 ``[`` never reaches the recursive decoder.
MAX_JSON_DEPTH = 32
# A JSON string, its closing quote optional: an unterminated one runs to the end in one match, so the
# scan stays linear (with the quote required, ``"\\"\\...`` retried from every quote: quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting of ``raw`` outside JSON strings (a cheap scan, no parsing).

    With ``stop_above`` the scan ends as soon as the depth exceeds it (the answer is then
    ``stop_above + 1``), so a payload of nothing but brackets costs a few iterations.
    """
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        else:
            depth = max(0, depth - 1)
    return deepest


def payload_bytes(payload: Any) -> bytes:
    return (
        bytes(payload)
        if isinstance(payload, bytes | bytearray)
        else (b"" if payload is None else str(payload).encode())
    )


def json_object(payload: Any, max_bytes: int = 65536, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The payload as a JSON object, or :class:`CommandError` ``malformed_json``/``payload_too_large``.

    Every way a hostile payload can fail is caught here (size, nesting, invalid
    UTF-8, integers over Python's digit limit, deep recursion), so one message
    can never end the MQTT session.
    """
    raw = payload_bytes(payload)
    if len(raw) > max_bytes:
        raise CommandError(
            "payload_too_large",
            f"消息体{len(raw)}字节，超过上限{max_bytes}",
            f"payload is {len(raw)} bytes, the limit is {max_bytes}",
        )
    if not raw.strip():
        return {}
    if json_depth(raw, max_depth) > max_depth:
        raise CommandError(
            "malformed_json", f"消息体嵌套超过{max_depth}层", f"payload nests deeper than {max_depth} levels"
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError, UnicodeDecodeError, huge ints
        raise CommandError("malformed_json", "消息体不是有效的JSON", f"payload is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise CommandError("malformed_json", "消息体须为JSON对象", "payload must be a JSON object")
    return data


def error_reply(exc: HallctlError) -> dict[str, Any]:
    """What HTTP's problem+json carries, under MQTT's names: Chinese ``message``, ``message_en``, extra members.

    A kiosk or window client on MQTT shows the same bilingual text as the pages and builds
    its buttons from the same ``choices``; ``errors`` is pydantic's list for invalid arguments.
    """
    error: dict[str, Any] = {**exc.extra, "code": exc.code, "message": exc.message, "message_en": exc.message_en}
    if isinstance(exc, CommandError) and exc.errors:
        error["errors"] = exc.errors
    return {"ok": False, "error": error}
