"""``hallctl demo``: a whole hall on simulated devices, embedded broker, pages served.

The demo config is the same TOML a real hall writes, with ``simulate = true`` on
every device; the simulators are the byte-compatible ones from ``drivers.sim``,
so the demo runs the real driver code. Tokens are created once and kept in the
demo's state directory (plain text: demo only) so the printed links stay valid
across restarts.
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Any

from hallctl import config
from hallctl.daemon import Hall
from hallctl.errors import HallctlError

log = logging.getLogger(__name__)

# The demo hall is config/demo-hall.toml (linked into this package so an installed hallctl has it too):
# one file, checked by the tests like every example config.
DEMO_CONFIG_PATH = Path(__file__).parent / "simulation" / "demo-hall.toml"
DEMO_TOML = DEMO_CONFIG_PATH.read_text(encoding="utf-8")


def demo_config(data: Path, port: int, host: str) -> config.Config:
    raw: dict[str, Any] = tomllib.loads(DEMO_TOML)
    raw["store"] = {"path": str(data / "hallctl.db")}
    raw["api"] = {"host": host, "port": port}
    raw["mqtt"] = {"embedded_port": 0}
    return config.parse(raw)


async def demo_tokens(hall: Hall, data: Path) -> dict[str, str]:
    path = data / "tokens.json"
    if path.exists():
        tokens: dict[str, str] = json.loads(path.read_text())
        try:
            for tok in tokens.values():
                await hall.auth.authenticate(tok)
            return tokens
        except HallctlError:
            pass
    tokens = {
        "admin": await hall.auth.create("admin", label="demo admin"),
        "kiosk": await hall.auth.create("kiosk", label="demo kiosks", kiosks=tuple(k.id for k in hall.cfg.kiosk)),
        "display": await hall.auth.create("display", label="demo screens"),
        "guide": await hall.auth.create("guide", label="demo guide desk"),
        "hvac": await hall.auth.create("hvac", label="demo HVAC"),
    }
    for w in hall.cfg.window:
        tokens[f"window{w.number}"] = await hall.auth.create("window", (w.number,), label=f"demo window {w.number}")
        tokens[f"pad{w.number}"] = await hall.auth.create("pad", (w.number,), label=f"demo pad {w.number}")
    path.write_text(json.dumps(tokens, indent=2))
    path.chmod(0o600)
    return tokens


async def run_demo(data: Path, port: int, host: str, config_file: str | None) -> int:
    """Run the demo hall; ``data`` must exist (the CLI creates it) and be absolute."""
    cfg = config.load(config_file) if config_file else demo_config(data, port, host)
    hall = Hall(cfg, demo=True, state_dir=data)
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hall.start()
    try:
        tokens = await demo_tokens(hall, data)
        base = f"http://{cfg.api.host}:{hall.api.port}"
        lines = [
            "",
            f"hallctl demo: {cfg.hall.name} is running",
            f"  screens:   {base}/?token={tokens['admin']}",
            f"  API docs:  {base}/docs",
            f"  health:    {base}/api/v1/health",
        ]
        mqtt_url = hall.health_extra().get("mqtt", {}).get("url")
        if mqtt_url:
            lines.append(
                f"  MQTT:      {mqtt_url}  (try: mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "
                f"{mqtt_url.rsplit(':', 1)[-1]} -t 'hallctl/#' -v)"
            )
        lines.append(f"  tokens:    {data / 'tokens.json'}")
        for name, tok in tokens.items():
            lines.append(f"    {name:9s} {tok}")
        lines.append("  simulate:  hallctl simulate swipe k1 --card 1   |   hallctl simulate evaluate 1 --level 5")
        lines.append("Press Ctrl+C to stop.")
        print("\n".join(lines), flush=True)
        await stop.wait()
    finally:
        await hall.stop()
    return 0
