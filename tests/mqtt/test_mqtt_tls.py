"""The daemon on an external broker over TLS with a client certificate (``mqtts://``)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from pathlib import Path

import aiomqtt

from tests.mqtt.mqtt_helpers import Mosquitto, free_port, make_config, running


def make_pki(d: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, via openssl."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=hallctl test CA")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn, ext in (("server", "127.0.0.1", ("-extfile", "san.ext")), ("client", "hallctl-daemon", ())):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            *ext,
        )


async def test_daemon_publishes_over_tls_with_client_certificate(tmp_path: Path, hall_id: str) -> None:
    """mqtts:// with ca_file, cert_file and key_file: the daemon connects where a client cert is required."""
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    port = free_port()
    (tmp_path / "broker").mkdir()
    # The helper's plain listener stays; the TLS listener below is the one the daemon uses.
    broker = Mosquitto(
        tmp_path / "broker",
        extra=(
            f"listener {port} 127.0.0.1\n"
            f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
            "require_certificate true\n"
        ),
    )
    broker.start()
    try:
        cfg = make_config(
            tmp_path,
            hall_id,
            f"mqtts://127.0.0.1:{port}",
            ca_file=str(pki / "ca.crt"),
            cert_file=str(pki / "client.crt"),
            key_file=str(pki / "client.key"),
        )
        tls = aiomqtt.TLSParameters(
            ca_certs=str(pki / "ca.crt"),
            certfile=str(pki / "client.crt"),
            keyfile=str(pki / "client.key"),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        root = f"hallctl/{hall_id}"
        async with aiomqtt.Client("127.0.0.1", port, tls_params=tls, identifier=f"{hall_id}-sub") as sub:
            await sub.subscribe(f"{root}/#", qos=1)
            async with running(cfg) as hall, asyncio.timeout(15):
                async for msg in sub.messages:
                    if msg.topic.value == f"{root}/status" and msg.payload == b"online":
                        break
                await hall.service.issue("A")
                async for msg in sub.messages:
                    if msg.topic.value == f"{root}/event/ticket_issued":
                        assert json.loads(msg.payload)["number"] == "A001"
                        break
                health = hall.health_extra()["mqtt"]
                assert health["connected"] and health["url"] == f"mqtts://127.0.0.1:{port}"
    finally:
        broker.stop()
