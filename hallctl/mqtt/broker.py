"""The embedded MQTT broker: a supervised Mosquitto child process, so a hall needs no broker setup.

When no ``[mqtt] url`` is configured, the MQTT component starts Debian's
``mosquitto`` with a config generated in ``<state_dir>/mosquitto/``:

* a **loopback listener** (``embedded_host``:``embedded_port``; port 0 = a free port,
  found by binding port 0 and retried when another process takes it first);
* a **LAN listener** only when ``lan_listener`` is set; then anonymous clients are
  refused everywhere and every client logs in as a role user (``hallctl mqtt passwd``)
  whose rights come from the ACL generated from the hall's config (:mod:`hallctl.mqtt.acl`);
* MQTT 5 and 3.1.1 on every listener, persistence in the state directory;
* the daemon logs in as ``hallctl`` with a password generated at each start
  (written with ``mosquitto_passwd`` through its stdin, never on a command line).

The child is restarted with backoff if it dies (the MQTT client reconnects by
itself), stopped with the daemon (SIGTERM, then SIGKILL), and its output goes to
the daemon's log, rate-limited. A child left behind by a daemon that was killed is
found by its pid file and stopped before a new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hallctl.config import Config, lan_address
from hallctl.mqtt import acl
from hallctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 5
RESTART_MIN_S = 0.2
RESTART_MAX_S = 10.0
STABLE_AFTER_S = 30.0  # a child that ran this long resets the backoff
LOG_BURST = 20  # lines of mosquitto output per LOG_WINDOW_S; the rest are counted and summarised
LOG_WINDOW_S = 10.0


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a child that gets SIGTERM when the daemon dies, even by SIGKILL (no orphaned broker)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_it() -> None:  # runs in the child between fork and exec: no imports, no locks, one syscall
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return set_it


_PREEXEC = _parent_death_signal()


class EmbeddedBrokerError(Exception):
    """The embedded broker could not start (no mosquitto, port taken, bad config)."""


def mosquitto_binary(configured: str | None = None) -> str:
    if configured:
        return configured
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        raise EmbeddedBrokerError("mosquitto is not installed (apt-get install mosquitto) and no [mqtt] url is set")
    return found


def passwd_binary() -> str:
    found = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None
    )
    if found is None:
        raise EmbeddedBrokerError("mosquitto_passwd is not installed (apt-get install mosquitto)")
    return found


def broker_dir(state_dir: Path) -> Path:
    return state_dir / "mosquitto"


def set_password(passwd_file: Path, user: str, password: str) -> None:
    """Add or replace one user in a Mosquitto password file (created 0600 when missing).

    The password goes to ``mosquitto_passwd`` on its stdin, so it never shows in the process list.
    Blocking: call it in a thread from async code.
    """
    import subprocess

    if not passwd_file.exists():
        passwd_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(passwd_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    done = subprocess.run(
        [passwd_binary(), str(passwd_file), user],
        input=f"{password}\n{password}\n".encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise EmbeddedBrokerError(f"mosquitto_passwd failed for {user}: {done.stderr.decode(errors='replace').strip()}")
    passwd_file.chmod(0o600)


def signal_running(state_dir: Path) -> int | None:
    """Tell the embedded broker of a running daemon to reload its password file; its pid, or None."""
    pid = _live_pid(broker_dir(state_dir))
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
    return pid


def _live_pid(workdir: Path) -> int | None:
    """The pid in ``mosquitto.pid`` if that process is still a mosquitto with our config."""
    try:
        pid = int((workdir / "mosquitto.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    conf = str(workdir / "mosquitto.conf").encode()
    return pid if conf in cmdline and any(b"mosquitto" in part for part in cmdline[:1]) else None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _listener_line(host: str, port: int) -> str:
    return f"listener {port} {host}"


class MosquittoBroker:
    """One supervised mosquitto child; ``port`` is its loopback listener's port once started."""

    def __init__(self, cfg: Config, state_dir: Path) -> None:
        m = cfg.mqtt
        self.cfg = cfg
        self.host = "127.0.0.1" if m.embedded_host == "localhost" else m.embedded_host
        self.requested_port = m.embedded_port
        self.lan = lan_address(m.lan_listener) if m.lan_listener else None
        self.anonymous = m.embedded_anonymous if m.embedded_anonymous is not None else self.lan is None
        self.workdir = broker_dir(state_dir)
        self.conf = self.workdir / "mosquitto.conf"
        self.passwd = self.workdir / "passwd"
        self.binary = m.embedded_binary
        self.port: int | None = None
        self.username = acl.DAEMON_USER
        self.password = secrets.token_urlsafe(24)
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._started_at = 0.0
        self._log_window = (0.0, 0, 0)  # window start, lines logged, lines suppressed

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def health(self) -> dict[str, Any]:
        return {
            "running": self.pid is not None,
            "pid": self.pid,
            "restarts": self.restarts,
            "port": self.port,
            "lan_listener": f"{self.lan[0]}:{self.lan[1]}" if self.lan else None,
            "anonymous": self.anonymous,
        }

    # ---- start / stop ----------------------------------------------------------------------

    async def start(self) -> int:
        self._stopping = False
        binary = mosquitto_binary(self.binary)
        await asyncio.to_thread(self._prepare)
        fixed = self.requested_port != 0
        last = ""
        for _ in range(1 if fixed else PORT_ATTEMPTS):
            port = self.requested_port if fixed else _free_port(self.host)
            self._write_conf(port)
            ok, last = await self._spawn(binary)
            if ok:
                self.port = port
                break
            if "in use" not in last:  # only a port taken between our probe and mosquitto's bind is worth a retry
                break
        if self.port is None:
            raise EmbeddedBrokerError(f"cannot start the embedded MQTT broker (mosquitto): {last.strip()[-500:]}")
        self._supervisor = asyncio.create_task(self._supervise(binary), name="hallctl.mqtt.broker")
        lan = f", LAN {self.lan[0]}:{self.lan[1]}" if self.lan else ""
        log.info(
            "embedded MQTT broker (mosquitto pid %s, MQTT 5 and 3.1.1) on %s%s; anonymous %s",
            self.pid,
            self.url,
            lan,
            "allowed on loopback" if self.anonymous else "refused",
        )
        return self.port

    async def stop(self) -> None:
        self._stopping = True
        task, self._supervisor = self._supervisor, None
        await cancel_and_wait(task)
        await self._terminate()

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            log.warning(
                "embedded MQTT broker (pid %s) ignored SIGTERM for %.0f s; killing it", proc.pid, STOP_TIMEOUT_S
            )
            proc.kill()
            await proc.wait()

    # ---- the child -------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Blocking: directory, a stale child of a killed daemon, the daemon's password, the ACL."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)
        stale = _live_pid(self.workdir)
        if stale is not None:
            log.warning("stopping a mosquitto (pid %d) left behind by an earlier daemon", stale)
            with contextlib.suppress(ProcessLookupError):
                os.kill(stale, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _live_pid(self.workdir) == stale and time.monotonic() < deadline:
                time.sleep(0.05)
            if _live_pid(self.workdir) == stale:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(stale, signal.SIGKILL)
        set_password(self.passwd, self.username, self.password)
        acl_file = self.workdir / "acl"
        acl_file.write_text(acl.acl_text(self.cfg), encoding="utf-8")
        acl_file.chmod(0o600)

    def _write_conf(self, port: int) -> None:
        lines = [
            "# Generated by hallctl at every start of the embedded broker; do not edit (see docs/mqtt.md).",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to `mosquitto` and lose this directory
            f"pid_file {self.workdir / 'mosquitto.pid'}",
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"password_file {self.passwd}",
        ]
        if not self.anonymous:
            lines.append(f"acl_file {self.workdir / 'acl'}")
        lines.append(_listener_line(self.host, port))
        if self.lan is not None:
            lines.append(_listener_line(*self.lan))
        lines += [
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 60",
            "max_queued_messages 10000",
            "connection_messages false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",  # its "running" line tells us the listeners are open
            "log_timestamp false",
        ]
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    async def _spawn(self, binary: str) -> tuple[bool, str]:
        """Start the child and wait until it says it runs; (False, its output) when it exits first."""
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(self.conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a Ctrl+C in the terminal reaches the daemon, which stops the child
            preexec_fn=_PREEXEC,  # one prctl syscall, see _parent_death_signal
        )
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    raw = await proc.stdout.readline()
                    if not raw:
                        await proc.wait()
                        return False, "\n".join(seen)
                    line = raw.decode(errors="replace").rstrip()
                    seen.append(line)
                    if line.endswith(" running"):  # "mosquitto version 2.0.11 running": listeners are open
                        break
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return False, "\n".join([*seen, f"not running after {START_TIMEOUT_S:.0f} s"])
        for line in seen:
            log.debug("mosquitto: %s", line)
        self._proc = proc
        self._started_at = time.monotonic()
        return True, ""

    async def _supervise(self, binary: str) -> None:
        attempt = 0
        while not self._stopping:
            proc = self._proc
            if proc is not None:
                await self._pump(proc)
                code = await proc.wait()
                if self._stopping:
                    return
                ran = time.monotonic() - self._started_at
                attempt = 0 if ran >= STABLE_AFTER_S else attempt + 1
                log.warning(
                    "embedded MQTT broker (pid %d) exited with %s after %.1f s; restarting", proc.pid, code, ran
                )
                self._proc = None
            delay = min(RESTART_MAX_S, RESTART_MIN_S * (2 ** min(attempt, 10)))
            await asyncio.sleep(delay)
            assert self.port is not None
            ok, out = await self._spawn(binary)
            if ok:
                self.restarts += 1
                log.info("embedded MQTT broker restarted (pid %s, restart %d)", self.pid, self.restarts)
            else:
                attempt += 1
                log.error("embedded MQTT broker did not restart: %s", out.strip()[-500:])

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        """Mosquitto's output into our log until it closes, at most LOG_BURST lines per LOG_WINDOW_S."""
        assert proc.stdout is not None
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            now = time.monotonic()
            start, logged, suppressed = self._log_window
            if now - start >= LOG_WINDOW_S:
                if suppressed:
                    log.warning("mosquitto: %d more lines suppressed", suppressed)
                start, logged, suppressed = now, 0, 0
            if logged < LOG_BURST:
                level = (
                    logging.DEBUG
                    if "in-memory database" in line or "should not be run as root" in line
                    else logging.WARNING
                    if "Error" in line or "Warning" in line
                    else logging.INFO
                )
                log.log(level, "mosquitto: %s", line)
                logged += 1
            else:
                suppressed += 1
            self._log_window = (start, logged, suppressed)
