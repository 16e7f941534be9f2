"""The machine's one pcscd and its two vpcd readers, shared fairly between demos.

Debian's pcscd listens on a fixed socket (``/run/pcscd/pcscd.comm``; the server has no
way to move it) and vpcd offers two virtual readers on fixed TCP ports, so two demos on
one machine necessarily share them. Sharing is made safe with advisory locks in the
temp directory:

- every demo that uses pcscd holds a shared lock on ``hallctl-demo-pcscd.lock``; the demo
  that started pcscd stops it only when it can then take that lock exclusively (nobody
  else uses it). Otherwise it leaves it running; it was started with ``-x`` and ends by
  itself a minute after its last client;
- each virtual reader is claimed with an exclusive lock on ``hallctl-vpcd-<port>.lock``,
  so a second demo takes the other reader instead of pushing its badges into the first
  demo's reader. With both taken, the simulator says so instead of stealing one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import IO

from drivers.sim.pcscd import Pcscd

log = logging.getLogger(__name__)

VPCD_FIRST_PORT = 35963
VPCD_READERS = 2


class NoFreeReader(RuntimeError):
    """Both virtual readers are claimed by other demos (or test runs) on this machine."""


def _lock_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / name


class ReaderSlot:
    """One claimed vpcd reader: its PC/SC name and the TCP port a virtual card connects to."""

    def __init__(self, index: int, lock: IO[bytes]) -> None:
        self.index = index
        self.reader = f"Virtual PCD 00 0{index}"
        self.port = VPCD_FIRST_PORT + index
        self._lock: IO[bytes] | None = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None


def claim_reader() -> ReaderSlot:
    """The first virtual reader no other process holds; :class:`NoFreeReader` when both are taken."""
    for index in range(VPCD_READERS):
        f = _lock_path(f"hallctl-vpcd-{VPCD_FIRST_PORT + index}.lock").open("ab")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        return ReaderSlot(index, f)
    raise NoFreeReader(
        f"both virtual badge readers (vpcd ports {VPCD_FIRST_PORT}-{VPCD_FIRST_PORT + VPCD_READERS - 1}) "
        "are in use by other demos on this machine"
    )


class SharedPcscd:
    """This demo's use of the machine's pcscd: started if none runs, stopped by the last demo using it."""

    def __init__(self) -> None:
        self._pcscd = Pcscd(auto_exit=True)
        self._lock: IO[bytes] | None = None

    def start(self) -> None:
        self._lock = _lock_path("hallctl-demo-pcscd.lock").open("ab")
        fcntl.flock(self._lock, fcntl.LOCK_SH)
        try:
            self._pcscd.start()
        except BaseException:
            self._unlock()
            raise
        if self._pcscd.process is not None:
            # Whoever stops last may not be the demo that started it: they find it here.
            _pid_file().write_text(str(self._pcscd.process.pid))

    def stop(self) -> None:
        if self._lock is None:
            return
        # The last demo out stops the pcscd a demo started. While we hold the lock exclusively, a demo
        # starting now waits for its shared lock, then finds no pcscd and starts its own.
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("pcscd is used by another demo; leaving it running")
            self._pcscd.release()
        else:
            if self._pcscd.owned:
                self._pcscd.stop()
            else:
                _stop_demo_pcscd()
            _pid_file().unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None


def _pid_file() -> Path:
    return _lock_path("hallctl-demo-pcscd.pid")


def _stop_demo_pcscd() -> None:
    """Stop the pcscd another (now stopped) demo started; never a pcscd no demo started (a system one)."""
    try:
        pid = int(_pid_file().read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if not cmdline or Path(cmdline[0].decode(errors="replace")).name != "pcscd" or b"-x" not in cmdline:
        return  # the pid was reused by something else, or it is not ours
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)  # bounded wait for a process that is not our child (no waitpid)


def _alive(pid: int) -> bool:
    """Running, not exited (a zombie waiting for its parent to reap it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
