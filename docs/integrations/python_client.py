#!/usr/bin/env python3
"""A plain Python client for hallctl over MQTT 5 (paho-mqtt 2.x).

It does what other hall software does: reads the retained waiting counts and sends a
command (``cmd/window/<n>/call_next``) with an MQTT 5 Response Topic and Correlation
Data, then waits for the one reply that carries the same correlation data. Replies go
only to ``hallctl/<hall>/reply/<client>/...``: give every client its own ``<client>``
(the broker ACL can then let it read only its own replies).

    pip install 'paho-mqtt>=2,<3'
    python3 python_client.py --host 127.0.0.1 --port 1883 --hall demo waiting
    python3 python_client.py --host 127.0.0.1 --port 1883 --hall demo call-next 1

Prints JSON: ``waiting`` prints ``{"A": 3, "B": 0, ...}``; ``call-next`` prints the
reply, e.g. ``{"ok": true, "command": "window.call_next", "ticket": {"number": "A001", ...}}``
(``"ticket": null`` when nobody waits; ``{"ok": false, "error": {"code": ...}}`` when refused).
Exit status 0 on a reply with ``"ok": true``, 1 on a refusal, 2 on no reply in time.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def connect(host: str, port: int, client_name: str, username: str | None, password: str | None) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{client_name}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    if username:
        client.username_pw_set(username, password)
    client.connect(host, port, keepalive=30, clean_start=True)
    client.loop_start()
    return client


def subscribe(client: mqtt.Client, topic: str, timeout: float) -> None:
    """Subscribe and wait for the SUBACK, so nothing published after this is missed."""
    acked: queue.Queue[bool] = queue.Queue()
    client.on_subscribe = lambda c, userdata, mid, reason_codes, props: acked.put(
        all(not rc.is_failure for rc in reason_codes)
    )
    client.subscribe(topic, qos=1)
    if not acked.get(timeout=timeout):
        raise RuntimeError(f"the broker refused the subscription to {topic}")


def waiting_counts(client: mqtt.Client, hall: str, categories: int | None, timeout: float) -> dict[str, int]:
    """The retained ``queue/<prefix>/state`` messages: waiting per category."""
    got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    client.on_message = lambda c, userdata, msg: got.put((msg.topic, json.loads(msg.payload)))
    subscribe(client, f"hallctl/{hall}/queue/+/state", timeout)
    counts: dict[str, int] = {}
    try:
        while categories is None or len(counts) < categories:
            topic, state = got.get(timeout=timeout if categories is not None else 1.0)
            counts[topic.split("/")[3]] = int(state["waiting"])
    except queue.Empty:
        if categories is not None:
            raise
    return counts


def request(
    client: mqtt.Client,
    hall: str,
    client_name: str,
    command: str,
    payload: dict[str, Any],
    timeout: float,
) -> dict[str, Any] | None:
    """Publish ``hallctl/<hall>/cmd/<command>`` and wait for its correlated reply (None: no reply)."""
    reply_topic = f"hallctl/{hall}/reply/{client_name}/{uuid.uuid4().hex}"
    correlation = uuid.uuid4().bytes
    replies: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client.on_message = lambda c, userdata, msg: replies.put(msg)
    subscribe(client, reply_topic, timeout)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = reply_topic
    props.CorrelationData = correlation
    props.MessageExpiryInterval = int(timeout) + 1  # a command nobody took in time is dropped, not run late
    client.publish(f"hallctl/{hall}/cmd/{command}", json.dumps(payload), qos=1, properties=props).wait_for_publish(
        timeout
    )
    try:
        while True:
            msg = replies.get(timeout=timeout)
            if getattr(msg.properties, "CorrelationData", None) == correlation:
                reply: dict[str, Any] = json.loads(msg.payload)
                return reply
    except queue.Empty:
        return None
    finally:
        client.unsubscribe(reply_topic)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--hall", default="demo", help="the hall id ([hall] id in hallctl.toml)")
    p.add_argument(
        "--client", default="pyclient", help="this client's name: replies go to hallctl/<hall>/reply/<client>/..."
    )
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--timeout", type=float, default=10.0)
    sub = p.add_subparsers(dest="action", required=True)
    w = sub.add_parser("waiting", help="print the waiting count per category")
    w.add_argument("--categories", type=int, help="wait until this many categories have reported")
    c = sub.add_parser("call-next", help="call the next ticket at a window")
    c.add_argument("window", type=int)
    a = p.parse_args(argv)
    client = connect(a.host, a.port, a.client, a.username, a.password)
    try:
        if a.action == "waiting":
            print(json.dumps(waiting_counts(client, a.hall, a.categories, a.timeout), sort_keys=True))
            return 0
        reply = request(client, a.hall, a.client, f"window/{a.window}/call_next", {}, a.timeout)
        if reply is None:
            print(json.dumps({"ok": False, "error": {"code": "no_reply", "message": "no reply in time"}}))
            return 2
        print(json.dumps(reply, ensure_ascii=False))
        return 0 if reply.get("ok") else 1
    finally:
        client.loop_stop()
        client.disconnect()


if __name__ == "__main__":
    sys.exit(main())
