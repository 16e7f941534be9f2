"""The AsyncAPI 3 document (``/api/v1/asyncapi.json``) is valid and covers the MQTT interface.

Validity: there is no official AsyncAPI 3.0 JSON Schema on PyPI, so the document is checked
with pydantic-asyncapi's object model of the 3.0 specification (fields, types, required
members), plus the structural rules that model does not know, written here: every ``$ref``
resolves, every ``{param}`` of a channel address is a declared parameter, every operation's
messages belong to its channel. Coverage: every event :func:`route` publishes (from a real
day in the hall, and from every event type) lands on a channel whose address matches its
topic, with a payload valid against that channel's message schema; every command topic of
the table has a channel and an operation with a reply.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError
from pydantic_asyncapi.v3 import AsyncAPI

from hallctl import events as ev
from hallctl.commands import COMMANDS, MQTT, Call, dispatch
from hallctl.mqtt.asyncapi import document, sample
from hallctl.mqtt.commands import MQTT_PRINCIPAL
from hallctl.mqtt.discovery import root
from hallctl.mqtt.topics import INTERNAL_EVENTS, Outgoing, route
from tests.core.core_helpers import FakeClock, LiveHall, make_config


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _channel_for(doc: dict[str, Any], topic: str) -> tuple[str, dict[str, Any]]:
    for name, ch in doc["channels"].items():
        addr = ch.get("address")
        if addr is None:
            continue
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(addr)) + "$"
        if re.match(pattern, topic):
            return name, ch
    raise AssertionError(f"no channel for topic {topic}")


def _check_payload(doc: dict[str, Any], out: Outgoing) -> None:
    name, ch = _channel_for(doc, out.topic)
    ((_, msg_ref),) = ch["messages"].items()
    message = _resolve(doc, msg_ref["$ref"])
    schema = {**message["payload"], "components": doc["components"]}
    jsonschema_rs.Draft202012Validator(schema).validate(json.loads(out.payload))
    op = next(o for o in doc["operations"].values() if o["channel"]["$ref"] == f"#/channels/{name}")
    assert op["action"] == "send" and op["bindings"]["mqtt"]["retain"] == out.retain


def test_document_is_asyncapi_3() -> None:
    doc = document(make_config())
    AsyncAPI.model_validate(doc)  # the 3.0 object model: types and required fields
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        _resolve(doc, ref)
    for name, ch in doc["channels"].items():
        params = set(re.findall(r"{(\w+)}", ch.get("address") or ""))
        assert params == set(ch.get("parameters", {})), name
    for name, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), name
        channel = op["channel"]["$ref"]
        for m in op["messages"]:
            assert m["$ref"].startswith(channel + "/messages/"), name
        if "reply" in op:
            for m in op["reply"]["messages"]:
                assert m["$ref"].startswith(op["reply"]["channel"]["$ref"] + "/messages/"), name


def test_the_object_model_refuses_a_broken_document() -> None:
    """The validator bites: a v2 action name, a missing info.version, a non-string address."""
    mutations: list[Callable[[dict[str, Any]], object]] = [
        lambda d: next(iter(d["operations"].values())).update(action="publish"),
        lambda d: d["info"].pop("version"),
        lambda d: d["channels"]["status"].update(address=5),
    ]
    for mutate in mutations:
        doc = document(make_config())
        mutate(doc)
        with pytest.raises(ValidationError):
            AsyncAPI.model_validate(doc)


def test_every_routed_event_type_has_its_channel() -> None:
    """Each event type route() publishes has a channel; its sample's payload validates."""
    cfg = make_config()
    doc = document(cfg)
    published = 0
    for cls in ev.ALL_EVENTS:
        event, _ = sample(cls)
        out = route(root(cfg), event)
        if out is None:
            assert issubclass(cls, INTERNAL_EVENTS) or cls.kind == ev.STATE, cls
            continue
        published += 1
        _check_payload(doc, out)
    assert published >= 15


def test_every_command_topic_has_a_channel_with_reply() -> None:
    cfg = make_config()
    doc = document(cfg)
    addresses = {ch.get("address"): name for name, ch in doc["channels"].items()}
    for cmd in COMMANDS.values():
        name = addresses.get(f"{root(cfg)}/cmd/{cmd.mqtt}")
        assert name is not None, cmd.name
        (op,) = [o for o in doc["operations"].values() if o["channel"]["$ref"] == f"#/channels/{name}"]
        assert op["action"] == "receive" and op["reply"]["messages"], cmd.name
        request = _resolve(doc, op["messages"][0]["$ref"])
        request = _resolve(doc, request["$ref"]) if "$ref" in request else request
        body = set(cmd.args.model_fields) - set(cmd.topic_params)
        assert body | {"reply_to", "request_id"} == set(request["payload"]["properties"]), cmd.name


async def test_a_real_day_matches_the_document(live: LiveHall, clock: FakeClock) -> None:
    """The events of a visit, routed as the bridge routes them, match channels and payload schemas;
    the document is served beside the OpenAPI document without a token."""
    resp = await live.client.get("/api/v1/asyncapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc == json.loads(json.dumps(document(live.hall.cfg)))
    seen: list[ev.Event] = []
    sub = live.svc.bus.subscribe("test.asyncapi", seen.append)
    w1, kiosk = live.auth("w1"), live.auth("kiosk")
    post = live.client.post
    assert (await post("/api/v1/tickets", json={"category": "A"}, headers=kiosk)).status_code == 201
    await post("/api/v1/windows/1/sign-in", json={"staff": "0231"}, headers=w1)
    for action in ("call-next", "start", "finish"):
        assert (await post(f"/api/v1/windows/1/{action}", headers=w1)).status_code == 200
    assert (await post("/api/v1/windows/1/evaluation", json={"level": 1}, headers=live.auth("p1"))).status_code == 201
    t = (await post("/api/v1/tickets", json={"category": "A"}, headers=kiosk)).json()
    assert (await post(f"/api/v1/tickets/{t['id']}/cancel", headers=live.auth("guide"))).status_code == 200
    for _ in range(100):  # bounded: the bus delivers asynchronously
        if any(isinstance(e, ev.TicketCancelled) for e in seen):
            break
        await asyncio.sleep(0.01)
    await live.svc.bus.unsubscribe(sub)
    outs = [o for e in seen if (o := route(root(live.hall.cfg), e)) is not None]
    kinds = {type(e) for e in seen}
    assert {ev.TicketIssued, ev.TicketCalled, ev.TicketFinished, ev.QueueState, ev.WindowState} <= kinds
    for out in outs:
        _check_payload(doc, out)
    assert len(outs) >= 10


async def test_command_replies_match_the_document(live: LiveHall) -> None:
    """Replies built as the bridge builds them (MQTT transport: masked) validate against each
    command's reply message; an error reply too."""
    doc = (await live.client.get("/api/v1/asyncapi.json")).json()
    ctx = live.hall.ctx

    def check(name: str, reply: dict[str, Any]) -> None:
        key = name.replace(".", "_")
        schema = {**doc["components"]["messages"][f"{key}_reply"]["payload"], "components": doc["components"]}
        jsonschema_rs.Draft202012Validator(schema).validate(reply)

    async def run(name: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await dispatch(ctx, name, args, Call(MQTT_PRINCIPAL, MQTT))
        reply = {"ok": True, "command": name, **result}
        check(name, reply)
        return reply

    assert (await run("ticket.issue", {"category": "A"}))["ticket"]["number"] == "A001"
    await run("window.call_next", {"window": 1})
    await run("window.start", {"window": 1})
    await run("window.finish", {"window": 1})
    await run("window.evaluate", {"window": 1, "level": 4})
    await run("window.pause", {"window": 2})
    second = (await run("ticket.issue", {"category": "A"}))["ticket"]
    await run("ticket.cancel", {"ticket_id": second["id"]})
    await run("display.show", {"display": "led1", "text": "暂停服务"})
    check("window.start", {"ok": False, "error": {"code": "no_current_ticket", "message": "…", "message_en": "…"}})
    with pytest.raises(jsonschema_rs.ValidationError):
        check("window.start", {"ok": True, "command": "window.start", "ticket": {"id": 5}})
