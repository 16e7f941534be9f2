"""The AsyncAPI 3.0 document of the hall's MQTT topics (``/api/v1/asyncapi.json``).

Generated from what the bridge really uses, so it cannot drift:

- state and event channels: :func:`hallctl.mqtt.topics.route` is called with a sample of
  every event type (:data:`hallctl.events.ALL_EVENTS`) whose fields are placeholders, and
  the topic it returns, placeholders turned back into ``{field}``, is the channel address;
  the payload schema is the event dataclass's own (pydantic reads it), with the fields
  :func:`~hallctl.mqtt.topics.payload_for` strips or renames handled the same way;
- command channels: the command table (:data:`hallctl.commands.COMMANDS`), its MQTT topic
  templates and argument models; each command operation has a reply (MQTT 5 response topic
  or the payload's ``reply_to``) whose success payload is the command's result model
  (:data:`hallctl.schemas.COMMAND_RESPONSES`);
- the availability topic (``<root>/status``, ``online``/``offline``, retained, last will).

The HTTP API serves it through a router the daemon registers (``hallctl.http`` never
imports ``hallctl.mqtt``): :func:`hallctl.mqtt.asyncapi_route.router`, which imports this
module at the first request.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, TypeAdapter

from hallctl import __version__, commands, schemas
from hallctl import events as ev
from hallctl.citylog import LOG_EVENT
from hallctl.config import Config
from hallctl.mqtt import discovery
from hallctl.mqtt.topics import STRIPPED_FIELDS, payload_for, route

REF = "#/components/schemas/{model}"
_INT_BASE = 7_000_000_000  # placeholder integers for topic fields (window numbers), far from any real one


def sample(cls: type[ev.Event]) -> tuple[ev.Event, dict[str, str]]:
    """An instance of ``cls`` whose string fields are ``{name}`` and whose integers are unique
    placeholders; returns it with the map placeholder text → ``{name}``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    back: dict[str, str] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        t = hints[f.name]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if typing.get_origin(t) in (typing.Union, types.UnionType) and args:
            t = args[0]
        if t is str:
            values[f.name] = "{" + f.name + "}"
        elif t is int:
            values[f.name] = _INT_BASE + i
            back[str(_INT_BASE + i)] = "{" + f.name + "}"
        elif t is float:
            values[f.name] = 1.5
        elif t is bool:
            values[f.name] = False
        elif t is datetime:
            values[f.name] = datetime(2026, 1, 1, tzinfo=UTC)
        elif typing.get_origin(t) is tuple:
            values[f.name] = ()
        elif typing.get_origin(t) is dict:
            values[f.name] = {}
        else:
            values[f.name] = None
    return cls(**values), back


def address(root: str, cls: type[ev.Event]) -> str | None:
    """The topic template :func:`route` publishes ``cls`` on (``{field}`` for the variable parts)."""
    event, back = sample(cls)
    out = route(root, event)
    if out is None:
        return None
    topic = out.topic
    for text, name in back.items():
        topic = topic.replace(text, name)
    return topic


def _schema(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(mode="serialization", ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    return schema


def event_payload(cls: type[ev.Event], defs: dict[str, Any]) -> dict[str, Any]:
    """The event's schema as :func:`payload_for` sends it (stripped fields gone, ``device_kind`` → ``kind``)."""
    schema = _schema(cls, defs)
    props: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    renames = {"device_kind": "kind"} if cls is ev.DeviceState else {}
    for key in STRIPPED_FIELDS:
        props.pop(key, None)
    for old, new in renames.items():
        props[new] = props.pop(old)
    schema["required"] = [renames.get(k, k) for k in required if k not in STRIPPED_FIELDS]
    return schema


def _params(template: str, descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    names = [p[1:-1] for p in template.split("/") if p.startswith("{") and p.endswith("}")]
    return {n: {"description": (descriptions or {}).get(n, f"the {n}")} for n in names}


def _command_payload(cmd: commands.Command, root: str) -> dict[str, Any]:
    schema = cmd.args.model_json_schema(ref_template=REF)
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in cmd.topic_params}
    props["reply_to"] = {
        "type": "string",
        "maxLength": 256,
        "description": f"MQTT 3.1.1: where to send the reply, under {root}/reply/<client>/ "
        "(MQTT 5: the Response Topic property)",
    }
    props["request_id"] = {
        "type": ["string", "integer"],
        "description": "Echoed in the reply; a repeated id within the dedupe window replays the first reply",
    }
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [k for k in schema.get("required", []) if k not in cmd.topic_params]
    if required:
        out["required"] = required
    if "title" in schema:
        out["title"] = schema["title"]
    return out


def _reply_payload(cmd: commands.Command, defs: dict[str, Any]) -> dict[str, Any]:
    model = schemas.COMMAND_RESPONSES[cmd.name]
    result = _schema(model, defs)
    if isinstance(model, type) and issubclass(model, BaseModel):
        defs[model.__name__] = result
        result = {"$ref": REF.format(model=model.__name__)}
    if cmd.http.body:
        result = {"type": "object", "properties": {cmd.http.body: result}, "required": [cmd.http.body]}
    ok = {
        "type": "object",
        "properties": {
            "ok": {"const": True},
            "command": {"const": cmd.name},
            "request_id": {"type": "string"},
        },
        "required": ["ok", "command"],
    }
    return {
        "oneOf": [
            {"allOf": [ok, result]},
            {"$ref": REF.format(model="ErrorReply")},
        ]
    }


ERROR_REPLY = {
    "type": "object",
    "properties": {
        "ok": {"const": False},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "Chinese text, as HTTP's detail"},
                "message_en": {"type": "string", "description": "English text, as HTTP's detail_en"},
                "choices": {"type": "array", "items": {"type": "string"}},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["code", "message", "message_en"],
        },
        "request_id": {"type": "string"},
    },
    "required": ["ok", "error"],
}


def _server(cfg: Config) -> dict[str, Any]:
    if cfg.mqtt.url:
        url = urlsplit(cfg.mqtt.url)
        host = url.hostname or "localhost"
        port = url.port or (8883 if url.scheme in ("mqtts", "ssl") else 1883)
        return {
            "host": f"{host}:{port}",
            "protocol": "secure-mqtt" if url.scheme in ("mqtts", "ssl") else "mqtt",
            "description": "The hall's broker ([mqtt] url)",
        }
    host = getattr(cfg.mqtt, "embedded_host", "127.0.0.1")
    port = getattr(cfg.mqtt, "embedded_port", 1883)
    return {"host": f"{host}:{port}", "protocol": "mqtt", "description": "The broker hallctl starts"}


# The city feed's rows (hallctl/citylog.py, docs/city.md): the columns of the event log and the hall id.
LOG_ROW: dict[str, Any] = {
    "type": "object",
    "required": ["hall", "seq", "at", "kind", "ticket_id", "window", "data"],
    "additionalProperties": False,
    "properties": {
        "hall": {"type": "string"},
        "seq": {
            "type": "integer",
            "minimum": 1,
            "description": "the event log's sequence number: (hall, seq) is unique",
        },
        "at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string"},
        "ticket_id": {"type": ["string", "null"]},
        "window": {"type": ["integer", "null"]},
        "data": {"type": "object"},
        "replay": {"type": "boolean", "description": "present (true) when the row answers city.replay"},
    },
}


def _city_log(root: str, channels: dict[str, Any], operations: dict[str, Any], messages: dict[str, Any]) -> None:
    messages["log"] = {"name": "log", "title": "Event-log row (city feed)", "contentType": "application/json",
                       "payload": LOG_ROW}  # fmt: skip
    channels["log"] = {
        "address": f"{root}/event/{LOG_EVENT}",
        "title": "The event log, row by row, for the city's central ([city] feed; docs/city.md)",
        "messages": {"log": {"$ref": "#/components/messages/log"}},
    }
    operations["publish_log"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/log"},
        "messages": [{"$ref": "#/channels/log/messages/log"}],
        "summary": "hallctl publishes each event-log row after its commit (QoS 1), again on city.replay",
        "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}},
    }


def document(cfg: Config) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of this hall's MQTT interface."""
    root = discovery.root(cfg)
    defs: dict[str, Any] = {"ErrorReply": ERROR_REPLY}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for cls in ev.ALL_EVENTS:
        topic = address(root, cls)
        if topic is None:
            continue  # stays in the hall (internal, or a state without a topic)
        name = cls.wire_name
        retained = cls.kind == ev.STATE
        messages[name] = {
            "name": name,
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else name,
            "contentType": "application/json",
            "payload": event_payload(cls, defs),
            "bindings": {"mqtt": {"bindingVersion": "0.2.0"}},
        }
        channels[name] = {
            "address": topic,
            "title": f"{cls.__name__} ({'retained state' if retained else 'event'})",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "parameters": _params(topic),
        }
        operations[f"publish_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
            "summary": f"hallctl publishes {name} ({'QoS 1, retained' if retained else 'QoS 1'})",
            "bindings": {"mqtt": {"qos": 1, "retain": retained, "bindingVersion": "0.2.0"}},
        }

    status = discovery.status_topic(cfg)
    messages["status"] = {
        "name": "status",
        "contentType": "text/plain",
        "payload": {"type": "string", "enum": ["online", "offline"]},
    }
    channels["status"] = {
        "address": status,
        "title": "Availability (retained; `offline` is the last will)",
        "messages": {"status": {"$ref": "#/components/messages/status"}},
    }
    operations["publish_status"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/status"},
        "messages": [{"$ref": "#/channels/status/messages/status"}],
        "bindings": {"mqtt": {"qos": 1, "retain": True, "bindingVersion": "0.2.0"}},
    }

    if cfg.city.feed:
        _city_log(root, channels, operations, messages)

    channels["reply"] = {
        "address": f"{root}/reply/{{client}}/{{path}}",
        "title": "Command replies: the request's MQTT 5 Response Topic (Correlation Data echoed) or `reply_to`",
        "description": "Only inside the reply namespace; a command whose reply topic is outside it is not executed",
        "parameters": {
            "client": {"description": "the client's own level (normally its broker user name), 1-64 characters"},
            "path": {"description": "levels of the client's choosing below it (none empty)"},
        },
        "messages": {},
    }
    for cmd in commands.COMMANDS.values():
        key = cmd.name.replace(".", "_")
        topic = f"{root}/cmd/{cmd.mqtt}"
        messages[f"{key}_request"] = {
            "name": f"{cmd.name} request",
            "contentType": "application/json",
            "payload": _command_payload(cmd, root),
        }
        messages[f"{key}_reply"] = {
            "name": f"{cmd.name} reply",
            "contentType": "application/json",
            "payload": _reply_payload(cmd, defs),
        }
        channels[f"cmd_{key}"] = {
            "address": topic,
            "title": f"Command {cmd.name} (HTTP {cmd.http.method} /api/v1{cmd.http.path})",
            "messages": {f"{key}_request": {"$ref": f"#/components/messages/{key}_request"}},
            "parameters": _params(topic),
        }
        channels["reply"]["messages"][f"{key}_reply"] = {"$ref": f"#/components/messages/{key}_reply"}
        operations[f"cmd_{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/cmd_{key}"},
            "messages": [{"$ref": f"#/channels/cmd_{key}/messages/{key}_request"}],
            "summary": f"Command {cmd.name}; roles on HTTP: {', '.join(cmd.roles)}",
            "reply": {
                "address": {
                    "location": "$message.payload#/reply_to",
                    "description": "MQTT 5: the Response Topic property (Correlation Data echoed); else reply_to",
                },
                "channel": {"$ref": "#/channels/reply"},
                "messages": [{"$ref": f"#/channels/reply/messages/{key}_reply"}],
            },
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"hallctl MQTT ({cfg.hall.id})",
            "version": __version__,
            "description": "State (retained), events and commands of one hall. See docs/mqtt.md.",
        },
        "defaultContentType": "application/json",
        "servers": {"broker": _server(cfg)},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": defs, "messages": messages},
    }


__all__ = ["address", "document", "payload_for", "sample"]
