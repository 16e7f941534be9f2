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

from hallctl import auth, config
from hallctl.daemon import Hall
from hallctl.errors import HallctlError

log = logging.getLogger(__name__)

DEMO_TOML = """
[hall]
id = "demo"
name = "示范区政务服务中心"
name_en = "Demo District Government Service Centre"
notice = "欢迎来到政务服务中心 · 请携带身份证原件 · 老年人、残疾人、孕妇、军人请走绿色通道"

[queue]
evaluation_timeout_s = 30

[[category]]
prefix = "A"
name = "便民服务"
name_en = "Citizen services"
target_wait_minutes = 10
[[category]]
prefix = "B"
name = "法人服务"
name_en = "Company services"
target_wait_minutes = 15
[[category]]
prefix = "C"
name = "公安户政"
name_en = "Police & household register"
[[category]]
prefix = "D"
name = "不动产登记"
name_en = "Real estate registration"
target_wait_minutes = 20

[[window]]
number = 1
name = "1号窗口 便民"
categories = ["A"]
led = "led-floor1"
led_address = 1
pad = "pad1"
[[window]]
number = 2
name = "2号窗口 便民"
categories = ["A", "C"]
led = "led-floor1"
led_address = 2
pad = "pad2"
[[window]]
number = 3
name = "3号窗口 法人"
categories = ["B", "A"]
led = "led-floor1"
led_address = 3
pad = "pad3"
badge_reader = "badge3"
[[window]]
number = 4
name = "4号窗口 公安"
categories = ["C"]
led = "led-floor1"
led_address = 4
[[window]]
number = 5
name = "5号窗口 不动产"
floor = 2
categories = ["D"]
[[window]]
number = 6
name = "6号窗口 综合"
floor = 2
categories = ["D", "B", "A"]

[[kiosk]]
id = "k1"
categories = ["A", "B", "C", "D"]
reader = "idr-k1"
printer = "prn-k1"
[[kiosk]]
id = "k2"
floor = 2
categories = ["D"]
reader = "idr-k2"
printer = "prn-k2"

[[device]]
id = "idr-k1"
kind = "idcard"
simulate = true
[[device]]
id = "idr-k2"
kind = "idcard"
simulate = true
[[device]]
id = "prn-k1"
kind = "printer"
simulate = true
[[device]]
id = "prn-k2"
kind = "printer"
simulate = true
[[device]]
id = "led-floor1"
kind = "led_bus"
simulate = true
[[device]]
id = "pad1"
kind = "evalpad"
simulate = true
[[device]]
id = "pad2"
kind = "evalpad"
simulate = true
[[device]]
id = "pad3"
kind = "evalpad"
simulate = true
[[device]]
id = "badge3"
kind = "badge"
simulate = true
[[device]]
id = "th-floor1"
kind = "modbus_sensor"
simulate = true
[[device]]
id = "th-floor2"
kind = "modbus_sensor"
simulate = true

[[sensor]]
id = "floor1"
name = "一楼大厅"
source = "modbus"
device = "th-floor1"
[[sensor]]
id = "floor2"
name = "二楼大厅"
floor = 2
source = "modbus"
device = "th-floor2"

[[climate_zone]]
id = "floor1"
name = "一楼"
sensors = ["floor1"]
[[climate_zone]]
id = "floor2"
name = "二楼"
sensors = ["floor2"]

[[staff]]
id = "0231"
name = "李明"
badge = "04A1B2C3"
[[staff]]
id = "0232"
name = "王芳"
badge = "04D5E6F7"
"""


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
                await auth.authenticate(hall.store, tok)
            return tokens
        except HallctlError:
            pass
    tokens = {
        "admin": await auth.create_token(hall.store, "admin", label="demo admin"),
        "kiosk": await auth.create_token(hall.store, "kiosk", label="demo kiosks"),
        "display": await auth.create_token(hall.store, "display", label="demo screens"),
        "guide": await auth.create_token(hall.store, "guide", label="demo guide desk"),
        "hvac": await auth.create_token(hall.store, "hvac", label="demo HVAC"),
    }
    for w in hall.cfg.window:
        tokens[f"window{w.number}"] = await auth.create_token(
            hall.store, "window", (w.number,), label=f"demo window {w.number}"
        )
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
                f"  MQTT:      {mqtt_url}  (try: mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "
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
