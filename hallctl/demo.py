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
import os
from pathlib import Path
from typing import Any

from hallctl import config
from hallctl.daemon import Hall
from hallctl.errors import HallctlError
from hallctl.http.server import bind_listener

log = logging.getLogger(__name__)

# The demo hall is config/demo-hall.toml (linked into this package so an installed hallctl has it too):
# one file, checked by the tests like every example config.
DEMO_CONFIG_PATH = Path(__file__).parent / "simulation" / "demo-hall.toml"
DEMO_TOML = DEMO_CONFIG_PATH.read_text(encoding="utf-8")


DEFAULT_PORT = 8780
DEFAULT_DATA = Path("var/demo")


DEMO_FILE = "hallctl.toml"


def demo_config_file(data: Path, port: int | None, host: str | None) -> Path:
    """``<data>/hallctl.toml``: the demo hall's own config file, written at its first run.

    The console's edits are written back to the file a hall runs from (tomlkit keeps the
    comments); a demo run from the built-in TOML had none, so every console edit was
    refused. The demo's file is the shipped demo hall with its ``[store]`` in ``data``, its
    address and an embedded broker; later runs use it as edited (delete it to start over).
    """
    path = data / DEMO_FILE
    if path.exists():
        return path
    import tomlkit  # the console's dependency; only at a demo's first run

    doc = tomlkit.parse(DEMO_TOML)
    doc["store"] = {"path": str(data / "hallctl.db")}
    doc["api"] = {"host": host or "127.0.0.1", "port": DEFAULT_PORT if port is None else port}
    doc["mqtt"] = {"embedded_port": 0}
    tmp = path.with_suffix(".tmp")
    head = (
        "# This demo's own copy of the demo hall, written by `hallctl demo` at its first run: the\n"
        "# console's edits are written here and kept. Delete this file to start again from the shipped one.\n\n"
    )
    tmp.write_text(head + tomlkit.dumps(doc), encoding="utf-8")
    tmp.replace(path)
    return path


def with_address(cfg: config.Config, port: int | None, host: str | None) -> config.Config:
    """``--port``/``--host`` win over the file's ``[api]``: `hallctl demo -c FILE --port N` means N."""
    update: dict[str, Any] = {}
    if port is not None:
        update["port"] = port
    if host is not None:
        update["host"] = host
    return cfg.model_copy(update={"api": cfg.api.model_copy(update=update)}) if update else cfg


def write_running(data: Path, url: str, hall_id: str) -> Path:
    """``<data>/demo.json``: where this demo serves, so `hallctl simulate --data DIR` finds it."""
    path = data / "demo.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "hall": hall_id}))
    tmp.replace(path)
    return path


def running_demo(data: Path) -> str | None:
    """The URL of the demo serving from ``data``, or None when none runs there (stale files ignored)."""
    try:
        info = json.loads((data / "demo.json").read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return url


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


async def demo_console_account(hall: Hall, data: Path) -> tuple[str, str]:
    """The demo's admin-console login (hall_admin ``demo``), its password kept beside the tokens (demo only)."""
    path = data / "console.json"
    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text())
        if any(a["name"] == saved["name"] for a in await hall.admin.accounts()):
            return saved["name"], saved["password"]
    import secrets

    name, password = "demo", secrets.token_urlsafe(12)
    if any(a["name"] == name for a in await hall.admin.accounts()):
        name = f"demo-{secrets.token_hex(2)}"  # the file was lost: a new account, the old one stays
    await hall.admin.add_account(name, "hall_admin", password, actor="hallctl demo")
    path.write_text(json.dumps({"name": name, "password": password}))
    path.chmod(0o600)
    return name, password


async def run_demo(data: Path, port: int | None, host: str | None, config_file: str | None) -> int:
    """Run the demo hall; ``data`` must exist (the CLI creates it) and be absolute."""
    path = Path(config_file) if config_file else demo_config_file(data, port, host)
    cfg = with_address(config.load(path), port, host)
    # A taken port is said before the simulators, pcscd and the broker start only to be stopped again.
    bind_listener(cfg.api.host, cfg.api.port).close()
    hall = Hall(cfg, demo=True, state_dir=data, config_path=path)
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
        write_running(data, base, cfg.hall.id)
        lines = [
            "",
            f"hallctl demo: {cfg.hall.name} is running",
            f"  screens:   {base}/?token={tokens['admin']}",
            f"  API docs:  {base}/docs",
            f"  health:    {base}/api/v1/health",
        ]
        account, password = await demo_console_account(hall, data)
        lines.append(f"  console:   {base}/admin  (account {account}, password {password})")
        mqtt_url = hall.health_extra().get("mqtt", {}).get("url")
        if mqtt_url:
            lines.append(
                f"  MQTT:      {mqtt_url}  (try: mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "
                f"{mqtt_url.rsplit(':', 1)[-1]} -t 'hallctl/#' -v)"
            )
        lines.append(f"  config:    {path}  (the console's edits are written here)")
        lines.append(f"  tokens:    {data / 'tokens.json'}")
        for name, tok in tokens.items():
            lines.append(f"    {name:9s} {tok}")
        # `hallctl simulate` finds this demo through <data>/demo.json; only a second demo's data dir needs saying.
        where = _data_option(data)
        kiosk = cfg.kiosk[0].id if cfg.kiosk else "k1"
        window = cfg.window[0].number if cfg.window else 1
        lines.append(
            f"  simulate:  hallctl simulate swipe {kiosk} --card 1{where}   |   "
            f"hallctl simulate evaluate {window} --level 5{where}"
        )
        lines.append("Press Ctrl+C to stop.")
        print("\n".join(lines), flush=True)
        await stop.wait()
    finally:
        (data / "demo.json").unlink(missing_ok=True)
        await hall.stop()
    return 0


def _data_option(data: Path) -> str:
    """`` --data DIR`` as the user would type it (relative when under the working directory), or nothing."""
    if data == DEFAULT_DATA.resolve():
        return ""
    try:
        return f" --data {data.relative_to(Path.cwd())}"
    except ValueError:
        return f" --data {data}"
