"""docs/integrations/home-assistant: every entity id and topic used is one hallctl really produces.

Entity ids are read from the discovery payloads for the demo hall at test time: HA's
``default_entity_id`` when the payload has it, else ``<component>.<object_id>`` as HA
slugifies it, so the check holds whichever of the two discovery sends.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hallctl import config
from hallctl import events as ev
from hallctl.demo import DEMO_TOML
from hallctl.mqtt import discovery, topics
from tests.integrations.conftest import EXAMPLES

HA = EXAMPLES / "home-assistant"
ENTITY_RE = re.compile(r"\b(?:sensor|binary_sensor|climate|switch|number|select|button)\.hallctl_[a-z0-9_]+")
PAYLOAD_FIELD_RE = re.compile(r"trigger\.payload_json\.([a-z_]+)")


def slug(text: str) -> str:
    """HA's ``slugify`` for the ASCII ids hallctl sends: lower case, runs of anything else → ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def demo_config() -> config.Config:
    return config.parse(tomllib.loads(DEMO_TOML))


def discovered_entities(cfg: config.Config) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for topic, payload in discovery.discovery_messages(cfg):
        body: dict[str, Any] = json.loads(payload)
        component = topic.split("/")[1]
        entity = body.get("default_entity_id") or f"{component}.{slug(body['object_id'])}"
        assert entity.startswith(f"{component}."), (topic, entity)
        out[entity] = body
    return out


def event_classes() -> dict[str, type[ev.Event]]:
    """Events hallctl publishes on ``<root>/event/<wire_name>``."""
    return {e.wire_name: e for e in ev.ALL_EVENTS if e.kind == ev.EVENT and not issubclass(e, topics.INTERNAL_EVENTS)}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def mqtt_triggers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("trigger") == "mqtt" or node.get("platform") == "mqtt":
            yield node
        for v in node.values():
            yield from mqtt_triggers(v)
    elif isinstance(node, list):
        for v in node:
            yield from mqtt_triggers(v)


def load(name: str) -> Any:
    return yaml.safe_load((HA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["dashboard.yaml", "automation.yaml", "README.md"])
def test_every_entity_id_is_discovered(name: str) -> None:
    """A typo, or an entity hallctl stops announcing, fails here rather than in someone's hall."""
    entities = discovered_entities(demo_config())
    text = (HA / name).read_text(encoding="utf-8")
    used = set(ENTITY_RE.findall(text))
    assert used, f"{name} uses no hallctl entity"
    assert sorted(used - entities.keys()) == []


def test_dashboard_is_a_lovelace_card() -> None:
    card = load("dashboard.yaml")
    assert card["type"] == "vertical-stack"
    for sub in card["cards"]:
        assert sub["type"] in {"glance", "entities", "history-graph"}
        for e in sub["entities"]:
            assert isinstance(e, str) or ("entity" in e and ENTITY_RE.fullmatch(e["entity"]))


def test_automation_triggers_on_ticket_called_with_real_fields() -> None:
    """MQTT triggers listen on topics hallctl publishes; templates read fields the event carries."""
    cfg = demo_config()
    root = discovery.root(cfg)
    published = {f"{root}/event/{wire}": cls for wire, cls in event_classes().items()}
    states = set(discovery.state_topics(cfg))
    autos = load("automation.yaml")
    assert isinstance(autos, list) and all({"id", "triggers", "actions"} <= a.keys() for a in autos)
    triggers = list(mqtt_triggers(autos))
    assert f"{root}/event/ticket_called" in {t["topic"] for t in triggers}
    for auto in autos:
        for trig in mqtt_triggers(auto):
            assert trig["topic"] in published.keys() | states, trig["topic"]
            fields = set(PAYLOAD_FIELD_RE.findall(" ".join(strings(auto))))
            cls = published.get(trig["topic"])
            if cls is not None:
                known = {f.name for f in dataclasses.fields(cls)} - set(topics.STRIPPED_FIELDS)
                assert sorted(fields - known) == [], f"{trig['topic']} carries no {sorted(fields - known)}"


def test_the_check_catches_a_wrong_id() -> None:
    """The entity check is not vacuous: an id hallctl never announces is not in the set."""
    entities = discovered_entities(demo_config())
    assert "sensor.hallctl_demo_queue_a_waiting" in entities
    assert "sensor.hallctl_demo_queue_z_waiting" not in entities
