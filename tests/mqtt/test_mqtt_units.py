"""Pure parts of the MQTT component: discovery payloads, routing, command topics, backoff, targets."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from hallctl import config
from hallctl import events as ev
from hallctl.commands import COMMANDS, CommandError
from hallctl.mqtt import discovery
from hallctl.mqtt.asyncapi import sample
from hallctl.mqtt.commands import command_for_topic, expired, reply_topic_allowed, reply_topic_refusal
from hallctl.mqtt.connection import backoff_delay, target_for
from hallctl.mqtt.topics import INTERNAL_EVENTS, STRIPPED_FIELDS, route
from tests.mqtt.mqtt_helpers import hall_raw

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def cfg_with_devices(tmp_path: Path) -> config.Config:
    raw = hall_raw(tmp_path, "xicheng", "mqtt://u:p%40ss@broker.example:1884")
    raw["device"] = [
        {"id": "prn-k1", "kind": "printer", "simulate": True},
        {"id": "idr k1".replace(" ", "-"), "kind": "idcard", "simulate": True},
    ]
    raw["sensor"].append({"id": "floor2", "source": "zigbee", "friendly_name": "th/2", "stale_after_s": 300})
    return config.parse(raw)


def test_discovery_payloads_parse_and_carry_the_keys_home_assistant_needs(tmp_path: Path) -> None:
    """Every config is JSON with unique_id, device identifiers, availability on the hall status, and a state topic."""
    cfg = cfg_with_devices(tmp_path)
    msgs = discovery.discovery_messages(cfg, version="0.1.0")
    ids = set()
    for topic, payload in msgs:
        body = json.loads(payload)
        prefix, component, node, object_id, last = topic.split("/")
        assert (prefix, node, last) == ("homeassistant", "hallctl_xicheng", "config")
        assert component in ("sensor", "binary_sensor", "climate")
        assert all(c.isalnum() or c in "_-" for c in object_id)
        assert body["unique_id"] not in ids
        ids.add(body["unique_id"])
        assert body["device"]["identifiers"] and body["device"]["name"]
        avail = (
            [body["availability_topic"]] if "availability_topic" in body else [a["topic"] for a in body["availability"]]
        )
        assert "hallctl/xicheng/status" in avail
        assert body["origin"]["name"] == "hallctl"
        assert any(
            k.endswith("_topic") and v.startswith("hallctl/xicheng/") for k, v in body.items() if isinstance(v, str)
        )
    by_id = {json.loads(p)["unique_id"]: json.loads(p) for _, p in msgs}
    assert by_id["hallctl_xicheng_queue_A_waiting"]["state_topic"] == "hallctl/xicheng/queue/A/state"
    assert by_id["hallctl_xicheng_queue_B_avg_wait"]["device_class"] == "duration"
    temp = by_id["hallctl_xicheng_sensor_floor2_temperature"]
    assert temp["device_class"] == "temperature" and temp["expire_after"] == 300
    assert by_id["hallctl_xicheng_sensor_floor1_humidity"]["unit_of_measurement"] == "%"
    assert by_id["hallctl_xicheng_device_prn-k1_state"]["options"] == ["ok", "degraded", "offline", "error", "unknown"]
    paper = by_id["hallctl_xicheng_device_prn-k1_paper"]
    assert paper["device_class"] == "problem" and paper["availability_mode"] == "all"
    assert "hallctl_xicheng_device_idr-k1_paper" not in by_id  # only printers have paper
    climate = by_id["hallctl_xicheng_climate_floor1"]
    assert climate["mode_command_topic"] == "hallctl/xicheng/cmd/climate/floor1/set"
    assert json.loads(climate["mode_command_template"].replace("{{ value }}", "cool")) == {"mode": "cool"}
    assert json.loads(climate["temperature_command_template"].replace("{{ value }}", "25.5")) == {"target": 25.5}
    assert set(climate["modes"]) == {"auto", "off", "cool", "heat", "dry", "fan_only"}


def test_discovery_prefix_and_switch(tmp_path: Path) -> None:
    """The prefix is configurable; no window or device means no entity for it."""
    raw = hall_raw(tmp_path, "h1", None, discovery_prefix="ha")
    cfg = config.parse(raw)
    topics = [t for t, _ in discovery.discovery_messages(cfg)]
    assert topics and all(t.startswith("ha/") for t in topics)
    assert not any("device_" in t for t in topics)


def test_state_topics_follow_the_config(tmp_path: Path) -> None:
    """The retained topic set (used to clear removed parts) names every configured part."""
    topics = discovery.state_topics(cfg_with_devices(tmp_path))
    assert "hallctl/xicheng/queue/A/state" in topics and "hallctl/xicheng/window/3/state" in topics
    assert "hallctl/xicheng/device/prn-k1/state" in topics and "hallctl/xicheng/climate/floor1/state" in topics
    assert "hallctl/xicheng/device/zigbee-floor2/state" in topics


def test_routing_maps_state_and_events_and_keeps_internal_ones_home() -> None:
    """State events go retained to their topics; internal events go nowhere; payloads lose offer and staff names."""
    root = "hallctl/x"
    q = ev.QueueState(
        at=NOW, category="A", name="便民", waiting=2, last_issued="A002", last_called=None, avg_wait_s=None, open=True
    )
    out = route(root, q)
    assert out is not None and out.topic == "hallctl/x/queue/A/state" and out.retain and out.qos == 1
    assert json.loads(out.payload)["at"] == "2026-11-23T09:30:00+00:00"
    d = route(
        root,
        ev.DeviceState(at=NOW, device="prn-k1", device_kind="printer", state="error", detail="paper_out", since=NOW),
    )
    assert d is not None and json.loads(d.payload)["kind"] == "printer"
    card = route(
        root,
        ev.CardRead(
            at=NOW,
            kiosk="k1",
            holder="张*丰",
            id_masked="1101**********002X",
            card_type="resident",
            elderly=True,
            offer="SECRET-OFFER",
            categories=("A",),
        ),
    )
    assert card is not None and card.topic == "hallctl/x/event/card_read" and not card.retain
    assert "SECRET-OFFER" not in card.payload
    w = route(
        root,
        ev.WindowState(
            at=NOW,
            window=3,
            name="3号",
            state="serving",
            ticket="A008",
            staff="0231",
            staff_name="李明",
            categories=("A",),
        ),
    )
    assert w is not None and "李明" not in w.payload and json.loads(w.payload)["staff"] == "0231"
    job = ev.PrintJob(
        ticket_id="t", hall_name="h", category_name="c", number="A1", waiting_ahead=0, issued_at=NOW, qr="T1.x.y"
    )
    assert route(root, ev.PrintRequested(at=NOW, ticket_id="t", kiosk="k1", job=job)) is None
    assert (
        route(root, ev.EvaluationRequested(at=NOW, ticket_id="t", number="A1", window=1, staff=None, staff_name=None))
        is None
    )
    assert route(root, ev.DisplayText(at=NOW, display="led3", text="x", seconds=None)) is None
    notice = route(root, ev.KioskNotice(at=NOW, kiosk="k1", code="printer_out", message="缺纸", message_en="x"))
    assert notice is not None and notice.topic == "hallctl/x/event/kiosk_notice"


# The documented retained topics: type → (topic part, field naming the topic, last part).
STATE_TOPICS = {
    ev.QueueState: ("queue", "category", "state"),
    ev.WindowState: ("window", "window", "state"),
    ev.DeviceState: ("device", "device", "state"),
    ev.SensorState: ("sensor", "sensor", "state"),
    ev.ClimateState: ("climate", "zone", "state"),
    ev.ClimateEnergy: ("climate", "zone", "energy"),
}


@pytest.mark.parametrize("cls", ev.ALL_EVENTS, ids=lambda c: c.__name__)
def test_every_event_type_routes_as_documented(cls: type[ev.Event]) -> None:
    """Topic, QoS, retain flag and payload text of each type (worked out once per type, so checked for all).

    The payload is the event's fields as compact JSON, byte for byte, without ``offer`` and
    ``staff_name`` and with a device's ``device_kind`` as ``kind``; the same event routes the
    same the second time.
    """
    root = "hallctl/x"
    event, _ = sample(cls)
    outs = [route(root, event), route(root, event)]
    if issubclass(cls, INTERNAL_EVENTS):
        assert outs == [None, None]
        return
    expected = {k: v for k, v in event.to_dict().items() if k not in STRIPPED_FIELDS}
    if cls is ev.DeviceState:
        expected["kind"] = expected.pop("device_kind")
    for out in outs:
        assert out is not None and out.qos == 1
        assert out.payload == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
        if cls in STATE_TOPICS:
            part, key, last = STATE_TOPICS[cls]
            assert out.topic == f"{root}/{part}/{getattr(event, key)}/{last}" and out.retain
        else:
            assert out.topic == f"{root}/event/{cls.wire_name}" and not out.retain
    if isinstance(event, ev.Alert):  # a raise request (no id yet) stays in the hall; the stored alert goes out
        assert route(root, dataclasses.replace(event, id=None)) is None


@pytest.mark.parametrize(
    ("topic", "name", "args"),
    [
        ("hallctl/x/cmd/ticket/issue", "ticket.issue", {}),
        ("hallctl/x/cmd/window/3/call_next", "window.call_next", {"window": "3"}),
        ("hallctl/x/cmd/window/12/no_show", "window.no_show", {"window": "12"}),
        ("hallctl/x/cmd/window/3/transfer", "window.transfer", {"window": "3"}),
        ("hallctl/x/cmd/display/led3/show", "display.show", {"display": "led3"}),
        ("hallctl/x/cmd/climate/floor1/set", "climate.set", {"zone": "floor1"}),
    ],
)
def test_command_topics_map_onto_the_command_table(topic: str, name: str, args: dict[str, object]) -> None:
    """Each documented command topic names a command the HTTP API also serves."""
    assert command_for_topic("hallctl/x", topic) == (name, args)
    assert name in COMMANDS


@pytest.mark.parametrize(
    "topic",
    [
        "hallctl/x/cmd/window/3",
        "hallctl/x/cmd/window/3/call_next/x",
        "hallctl/x/cmd/window/3/delete",
        "hallctl/x/cmd/ticket",
    ],
)
def test_unknown_command_topics_are_refused(topic: str) -> None:
    with pytest.raises(CommandError) as err:
        command_for_topic("hallctl/x", topic)
    assert err.value.code == "unknown_command"


def test_reply_topics_cannot_reach_our_own_tree() -> None:
    """Replies go only to <root>/reply/<client>[/...]: never onto state, status, other trees or wildcards."""
    root = "hallctl/x"
    for good in (
        f"{root}/reply/kiosk-k1/42",
        f"{root}/reply/kiosk-k1",
        f"{root}/reply/ha_1/a/b",
        f"{root}/reply/a@b.c:d",
    ):
        assert reply_topic_allowed(root, good), good
    bad = (
        "kiosks/k1/replies",
        "homeassistant/sensor/x/config",
        f"{root}/status",
        f"{root}/queue/A/state",
        f"{root}/reply",
        f"{root}/reply/",
        f"{root}/reply//x",
        f"{root}/reply/a b/x",
        f"{root}/reply/k//x",
        f"{root}/reply/k/",
        f"{root}/reply/k/+",
        f"{root}/reply/k/#",
        f"{root}/reply/" + "k" * 65,
        f"{root}/reply/k/" + "x" * 300,
        "hallctl/y/reply/z",
        "hallctl/xx/reply/z",
        "a/+/b",
        "$SYS/x",
        "",
        f"{root}/reply/k/\0",
    )
    for topic in bad:
        assert reply_topic_refusal(root, topic) is not None, topic
    assert reply_topic_refusal(root, 42) is not None


def test_message_expiry_counts_the_time_waited_in_the_daemon() -> None:
    assert not expired(None, arrived=0.0, now=1e9)  # no expiry: never
    assert not expired(5, arrived=100.0, now=104.9)
    assert expired(5, arrived=100.0, now=105.1)
    assert expired(0, arrived=100.0, now=100.001)


def test_backoff_grows_is_capped_and_jittered() -> None:
    """Delays double from the minimum up to the cap; jitter keeps them between half and all of it."""
    assert backoff_delay(0, 1.0, 60.0, rng=lambda: 1.0) == 1.0
    assert backoff_delay(3, 1.0, 60.0, rng=lambda: 1.0) == 8.0
    assert backoff_delay(50, 1.0, 60.0, rng=lambda: 1.0) == 60.0
    assert backoff_delay(50, 1.0, 60.0, rng=lambda: 0.0) == 30.0
    assert len({round(backoff_delay(4, 1.0, 60.0), 6) for _ in range(20)}) > 1


def test_targets_pick_protocol_credentials_and_tls(tmp_path: Path) -> None:
    """External brokers get MQTT 5 and the URL's credentials; the embedded Mosquitto gets MQTT 5 on localhost."""
    t = target_for(cfg_with_devices(tmp_path), None)
    assert (t.host, t.port, t.username, t.password) == ("broker.example", 1884, "u", "p@ss")
    assert t.protocol == aiomqtt.ProtocolVersion.V5 and not t.tls and "p@ss" not in t.display_url
    raw = hall_raw(tmp_path, "h", "mqtts://h.example", ca_file="/etc/ca.pem", protocol="3.1.1")
    t = target_for(config.parse(raw), None)
    assert t.tls and t.port == 8883 and t.protocol == aiomqtt.ProtocolVersion.V311
    t = target_for(config.parse(hall_raw(tmp_path, "h", None)), 41883)
    assert t.embedded and t.host == "127.0.0.1" and t.port == 41883 and t.protocol == aiomqtt.ProtocolVersion.V5


def test_wire_text_is_right_after_the_cache_drops_older_events() -> None:
    """The wire cache keeps the latest events only; one read again after it left serialises to the same text."""
    events = [
        ev.TicketIssued(
            at=NOW,
            ticket_id=f"t{i}",
            number=f"A{i:03d}",
            category="A",
            priority="normal",
            channel="kiosk",
            kiosk="k1",
            holder=None,
            waiting_ahead=i,
        )
        for i in range(3 * ev.WIRE_CACHE_SIZE)
    ]
    texts = [e.wire_json() for e in events]
    assert len(ev._wire_cache) <= ev.WIRE_CACHE_SIZE
    for e, text in zip(events, texts, strict=True):
        assert e.wire_json() == text == json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":"))
        assert e.wire_dict() == json.loads(text)
    assert len(ev._wire_cache) <= ev.WIRE_CACHE_SIZE
