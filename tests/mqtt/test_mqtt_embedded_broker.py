"""The embedded broker is a supervised Mosquitto child: both protocols, no retained spill, restart, ACL, no orphan.

Real processes throughout: the hall's own mosquitto child, external aiomqtt
clients (MQTT 5 and 3.1.1), ``hallctl mqtt passwd`` as a command, and the
daemon as a separate process for the orphan checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallctl import config
from hallctl.commands import CommandError
from hallctl.mqtt.acl import kiosk_scope
from tests.core.core_helpers import Daemon, to_toml
from tests.mqtt.mqtt_helpers import REPO, Listener, hall_raw, listen, make_config, running, until

V5 = aiomqtt.ProtocolVersion.V5
V311 = aiomqtt.ProtocolVersion.V311


def proc_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def ask_v5(sub: Listener, topic: str, body: dict[str, Any], reply_to: str) -> dict[str, Any]:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = reply_to
    props.CorrelationData = wanted = uuid.uuid4().bytes
    start = len(sub.messages)
    await sub.client.publish(topic, json.dumps(body).encode(), qos=1, properties=props)
    msg = await sub.wait_for(
        lambda m: m.topic.value == reply_to and getattr(m.properties, "CorrelationData", None) == wanted,
        start=start,
        timeout=10.0,
    )
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply


async def test_embedded_broker_is_a_mosquitto_child_serving_mqtt5_and_311(tmp_path: Path, hall_id: str) -> None:
    """No [mqtt] url: a mosquitto child; v5 and 3.1.1 clients read state; `nomatch/#` gets no retained spill."""
    root = f"hallctl/{hall_id}"
    async with running(make_config(tmp_path, hall_id, None)) as hall:
        await hall.service.issue("A")
        health = hall.health_extra()["mqtt"]
        broker = health["broker"]
        assert broker["running"] and broker["restarts"] == 0 and health["protocol"] == "5"
        pid = broker["pid"]
        assert Path(os.readlink(f"/proc/{pid}/exe")).name == "mosquitto" and parent_of(pid) == os.getpid()
        assert health["url"] == f"mqtt://127.0.0.1:{broker['port']}"
        assert (tmp_path / "mosquitto" / "mosquitto.conf").exists()
        for protocol in (V5, V311):
            async with listen(health["url"], f"{root}/queue/A/state", protocol=protocol) as sub:
                await sub.wait_for(lambda m: json.loads(m.payload)["waiting"] == 1)
        async with listen(health["url"], "nomatch/#") as stranger:
            await stranger.barrier()
            assert [m.topic.value for m in stranger.messages if m.topic.value != stranger.barrier_topic] == []
    assert not proc_alive(pid), "the hall stopped but its mosquitto runs on"


async def test_killed_broker_is_restarted_and_the_daemon_republishes(tmp_path: Path, hall_id: str) -> None:
    """kill -9 of the child: a new one on the same port, the daemon reconnects, republishes, takes commands."""
    root = f"hallctl/{hall_id}"
    async with running(make_config(tmp_path, hall_id, None)) as hall:
        mqtt = hall.health_extra()["mqtt"]
        first = mqtt["broker"]["pid"]
        connects = mqtt["connects"]
        await hall.service.issue("A")
        os.kill(first, signal.SIGKILL)
        await hall.service.issue("A")  # issuing does not wait for the broker
        await until(lambda: not proc_alive(first) or parent_of(first) != os.getpid(), what="old child gone")

        def back() -> bool:
            m = hall.health_extra()["mqtt"]
            return bool(m["broker"]["restarts"] >= 1 and m["connected"] and m["connects"] > connects)

        await until(back, what="broker restarted and daemon reconnected")
        await hall.service.issue("A")
        broker = hall.health_extra()["mqtt"]["broker"]
        assert broker["pid"] != first and broker["running"] and broker["port"] == mqtt["broker"]["port"]
        async with listen(mqtt["url"], f"{root}/status", f"{root}/queue/A/state", f"{root}/reply/t/#") as sub:
            await sub.topic(f"{root}/status", payload=b"online")
            await sub.wait_for(lambda m: m.topic.value.endswith("/state") and json.loads(m.payload)["waiting"] == 3)
            reply = await ask_v5(sub, f"{root}/cmd/ticket/issue", {"category": "A"}, f"{root}/reply/t/1")
            assert reply["ok"] is True and reply["ticket"]["number"] == "A004"


def loopback_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def passwd(cfg_file: Path, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hallctl.cli", "-c", str(cfg_file), "mqtt", "passwd", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


async def test_lan_listener_needs_a_login_and_the_generated_acl_holds(tmp_path: Path, hall_id: str) -> None:
    """LAN listener: anonymous refused; kiosk k1 issues only as k1; a display publishes no command at all."""
    root = f"hallctl/{hall_id}"
    lan_port = loopback_port("127.0.0.2")
    raw = hall_raw(tmp_path, hall_id, None, lan_listener=f"127.0.0.2:{lan_port}")
    raw["kiosk"].append({"id": "k2", "categories": ["A"]})
    cfg_file = tmp_path / "hall.toml"
    cfg_file.write_text(to_toml(raw), encoding="utf-8")
    done = passwd(cfg_file, "kiosk", "--kiosk", "k1", password="k1-secret")
    assert done.returncode == 0, done.stderr
    lan = f"mqtt://127.0.0.2:{lan_port}"
    async with running(config.parse(raw)) as hall:
        assert hall.health_extra()["mqtt"]["connected"] and hall.health_extra()["mqtt"]["protocol"] == "5"
        local = hall.health_extra()["mqtt"]["url"]
        # a user added while the broker runs: the command makes it reload its password file
        done = passwd(cfg_file, "display", password="screen-secret")
        assert done.returncode == 0 and "reloaded" in done.stderr, done.stderr
        for url in (lan, local):
            for protocol in (V5, V311):
                with pytest.raises(aiomqtt.MqttError):
                    async with listen(url, f"{root}/#", protocol=protocol):
                        pass
        with pytest.raises(aiomqtt.MqttError):
            async with listen(lan, f"{root}/#", username="kiosk-k1", password="wrong"):
                pass

        mine = f"{root}/reply/kiosk-k1/r"
        async with listen(
            lan, mine, f"{root}/queue/A/state", username="kiosk-k1", password="k1-secret", identifier="kiosk-k1"
        ) as kiosk:
            ok = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/ticket/issue", {"category": "A"}, mine)
            assert ok["ok"] is True and ok["ticket"]["number"] == "A001"
            await kiosk.wait_for(lambda m: m.topic.value.endswith("/state") and json.loads(m.payload)["waiting"] == 1)
            before = len(kiosk.messages)
            denied = [
                (f"{root}/cmd/kiosk/k2/ticket/issue", b'{"category":"A"}'),  # another kiosk
                (f"{root}/cmd/ticket/issue", b'{"category":"A"}'),  # not kiosk-scoped
                (f"{root}/cmd/window/1/call_next", b"{}"),  # a window command
            ]
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = mine
            for topic, body in denied:
                await kiosk.client.publish(topic, body, qos=1, properties=props)
            # the broker hands a client's messages on in order, the daemon handles them in order:
            # once this reply is here, any of the denied ones would have been handled
            ok = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/ticket/issue", {"category": "A"}, mine)
            assert ok["ticket"]["number"] == "A002", "a denied publish issued a ticket"
            replies = [m for m in kiosk.messages[before:] if m.topic.value == mine]
            assert len(replies) == 1
        assert hall.service._q.window(1).current is None

        async with listen(
            lan, f"{root}/queue/A/state", f"{root}/reply/display/#", username="display", password="screen-secret"
        ) as screen:
            await screen.wait_for(lambda m: json.loads(m.payload)["waiting"] == 2)
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = f"{root}/reply/display/x"
            await screen.client.publish(f"{root}/cmd/window/1/call_next", b"{}", qos=1, properties=props)
            await screen.client.publish(
                f"{root}/cmd/kiosk/k1/ticket/issue", b'{"category":"A"}', qos=1, properties=props
            )
        async with listen(lan, mine, username="kiosk-k1", password="k1-secret") as kiosk:
            ok = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/ticket/issue", {"category": "A"}, mine)
            assert ok["ticket"]["number"] == "A003", "the display's publish issued a ticket"
        assert hall.service._q.window(1).current is None


async def test_a_kiosk_user_checks_in_by_qr_and_asks_for_help_with_bilingual_errors(
    tmp_path: Path, hall_id: str
) -> None:
    """Kiosk k1's broker user may check a booking in by its QR and press 需要帮助; error replies carry message_en."""
    root = f"hallctl/{hall_id}"
    lan_port = loopback_port("127.0.0.2")
    raw = hall_raw(tmp_path, hall_id, None, lan_listener=f"127.0.0.2:{lan_port}")
    cfg_file = tmp_path / "hall.toml"
    cfg_file.write_text(to_toml(raw), encoding="utf-8")
    done = passwd(cfg_file, "kiosk", "--kiosk", "k1", password="k1-secret")
    assert done.returncode == 0, done.stderr
    lan = f"mqtt://127.0.0.2:{lan_port}"
    async with running(config.parse(raw)) as hall:
        svc = hall.service
        now = svc.clock().astimezone(svc.cfg.hall.tz)
        slot = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0) + timedelta(minutes=30)
        booking, _ = await svc.book("B", slot)
        mine = f"{root}/reply/kiosk-k1/r"
        async with listen(
            lan, mine, f"{root}/event/alert", username="kiosk-k1", password="k1-secret", identifier="kiosk-k1"
        ) as kiosk:
            wrong = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/appointment/check_in", {"qr": "T1.nope"}, mine)
            assert wrong["ok"] is False and wrong["error"]["code"] == "bad_qr_token"
            assert wrong["error"]["message"] == "二维码无效或已过期" and wrong["error"]["message_en"]
            qr = svc.appointment_qr(booking)
            ok = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/appointment/check_in", {"qr": qr}, mine)
            assert ok["ok"] is True and ok["ticket"]["number"] == "B001"
            assert ok["ticket"]["appointment_code"] == booking.code
            helped = await ask_v5(kiosk, f"{root}/cmd/kiosk/k1/help", {}, mine)
            assert helped["ok"] is True and helped["alert"]["alert"] == "help_requested"
            alert = await kiosk.wait_for(lambda m: m.topic.value == f"{root}/event/alert")
            assert json.loads(alert.payload)["subject"] == "k1"
        assert any(a.alert == "help_requested" for a in hall.supervision.recent(10))


def test_stopping_or_killing_the_daemon_stops_its_mosquitto(tmp_path: Path) -> None:
    """SIGTERM to the daemon stops the child; so does kill -9 of the daemon (no orphan broker)."""
    d = Daemon(tmp_path / "d")
    admin = asyncio.run(d.create_tokens({"admin": ("admin", ())}))["admin"]
    for how in ("stop", "kill9"):
        d.start()
        try:
            health = httpx.get(f"{d.url}/api/v1/health", headers={"Authorization": f"Bearer {admin}"}).json()
            broker = health["mqtt"]["broker"]
            pid = broker["pid"]
            assert d.proc is not None and parent_of(pid) == d.proc.pid and broker["running"]
            assert Path(os.readlink(f"/proc/{pid}/exe")).name == "mosquitto"
            getattr(d, how)()
        finally:
            d.stop()
        deadline = time.monotonic() + 10
        while proc_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded wait for an external process to exit
        assert not proc_alive(pid), f"mosquitto {pid} outlived the daemon ({how})"


def test_kiosk_scoped_topics_open_only_the_kiosks_own_commands() -> None:
    """cmd/kiosk/<id>/ carries only issue, check-in (code or QR) and help; the kiosk comes from the topic."""
    root = "hallctl/h"
    assert kiosk_scope(root, f"{root}/cmd/kiosk/k1/ticket/issue") == (f"{root}/cmd/ticket/issue", {"kiosk": "k1"})
    assert kiosk_scope(root, f"{root}/cmd/kiosk/k1/appointment/X7/check_in") == (
        f"{root}/cmd/appointment/X7/check_in",
        {"kiosk": "k1"},
    )
    assert kiosk_scope(root, f"{root}/cmd/kiosk/k1/appointment/check_in") == (
        f"{root}/cmd/appointment/check_in",
        {"kiosk": "k1"},
    )
    assert kiosk_scope(root, f"{root}/cmd/kiosk/k1/help") == (f"{root}/cmd/help", {"kiosk": "k1"})
    assert kiosk_scope(root, f"{root}/cmd/window/1/call_next") == (f"{root}/cmd/window/1/call_next", {})
    for bad in ("kiosk/k1/window/1/call_next", "kiosk/k1/ticket/5/cancel", "kiosk//ticket/issue", "kiosk/k1"):
        with pytest.raises(CommandError) as exc:
            kiosk_scope(root, f"{root}/cmd/{bad}")
        assert exc.value.code == "unknown_command"


def test_embedded_broker_keys_are_validated(tmp_path: Path) -> None:
    """A bad listener, a LAN bind address as embedded_host, anonymous LAN, or embedded keys with a url: refused."""
    cases = {
        "mqtt.lan_listener": {"lan_listener": "hall-lan:1883"},
        "mqtt.embedded_host": {"embedded_host": "0.0.0.0"},
    }
    for key, over in cases.items():
        with pytest.raises(config.ConfigError) as exc:
            config.parse(hall_raw(tmp_path, "h", None, **over))
        assert any(line.startswith(key) for line in exc.value.lines), exc.value.lines
    conflicts: list[tuple[str | None, dict[str, Any]]] = [
        (None, {"lan_listener": "127.0.0.2:1883", "embedded_anonymous": True}),
        ("mqtt://broker:1883", {"lan_listener": "127.0.0.2:1883"}),
    ]
    for url, extra in conflicts:
        with pytest.raises(config.ConfigError):
            config.parse(hall_raw(tmp_path, "h", url, **extra))
    ok = config.parse(hall_raw(tmp_path, "h", None, lan_listener="[::1]:1883"))
    assert ok.mqtt.lan_listener == "[::1]:1883"


async def test_a_broker_left_behind_is_stopped_before_a_new_one_starts(tmp_path: Path, hall_id: str) -> None:
    """A mosquitto on the hall's config and pid file (a daemon died without stopping it) gives way to a new one."""
    cfg = make_config(tmp_path, hall_id, None)
    async with running(cfg):
        pass
    conf = tmp_path / "mosquitto" / "mosquitto.conf"
    stale = await asyncio.create_subprocess_exec(
        "/usr/sbin/mosquitto", "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        pid_file = tmp_path / "mosquitto" / "mosquitto.pid"
        await until(lambda: pid_file.exists() and pid_file.read_text().strip() == str(stale.pid), what="pid file")
        async with running(cfg) as hall:
            async with asyncio.timeout(10):
                await stale.wait()  # stopped by the new hall before its own broker started
            broker = hall.health_extra()["mqtt"]["broker"]
            assert broker["running"] and broker["pid"] != stale.pid and hall.health_extra()["mqtt"]["connected"]
    finally:
        if stale.returncode is None:
            stale.kill()
            await stale.wait()
