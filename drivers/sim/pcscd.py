"""Start and stop a private ``pcscd`` so tests and the demo get real PC/SC readers.

With Debian's ``vsmartcard-vpcd`` installed, pcscd offers two virtual readers
(``Virtual PCD 00 00`` and ``00 01``) that :class:`drivers.sim.badge.VirtualBadge`
puts cards into. A pcscd that already runs (a system service, another test run)
is used as it is and never stopped: we stop only what we started.

Synchronous on purpose, so a pytest fixture can use it directly; an asyncio
caller runs ``start``/``stop`` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from types import TracebackType
from typing import IO, Self

from smartcard import scard

log = logging.getLogger(__name__)

VIRTUAL_READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")


class PcscdError(RuntimeError):
    """pcscd could not be started or did not offer the virtual readers in time."""


def list_readers() -> list[str] | None:
    """The readers pcscd offers now, or ``None`` when no pcscd answers."""
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return None
    try:
        hr, readers = scard.SCardListReaders(ctx, [])
        if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hr != scard.SCARD_S_SUCCESS:
            return None
        return list(readers)
    finally:
        scard.SCardReleaseContext(ctx)


class Pcscd:
    """``with Pcscd() as p:`` makes sure pcscd runs with the virtual readers listed."""

    def __init__(
        self,
        executable: str = "pcscd",
        *,
        readers: tuple[str, ...] = VIRTUAL_READERS,
        ready_timeout: float = 10.0,
        auto_exit: bool = False,
    ) -> None:
        self.executable = executable
        self.readers = readers
        self.ready_timeout = ready_timeout
        # pcscd -x: it ends by itself a minute after its last client, so one that others still use
        # can be left running by whoever started it (two demos on one machine share the one pcscd).
        self.auto_exit = auto_exit
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def owned(self) -> bool:
        """True when this object started pcscd (and so may stop it)."""
        return self.process is not None

    def start(self) -> None:
        if self.process is not None:
            return
        if list_readers() is None:
            path = shutil.which(self.executable)
            if path is None:
                raise PcscdError(f"{self.executable} not found: install the Debian packages pcscd and vsmartcard-vpcd")
            # Foreground, so the process we hold is the daemon itself and stop() reaches it.
            # Its log goes to a file, not a pipe: a pipe nobody drains would block it.
            self._output = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
            argv = [path, "-f", *(["-x"] if self.auto_exit else [])]
            self.process = subprocess.Popen(argv, stdout=self._output, stderr=subprocess.STDOUT)
            log.info("started pcscd (pid %d)", self.process.pid)
        else:
            log.info("pcscd already running; using it")
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        seen: list[str] | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                out = self.output()
                self.stop()
                raise PcscdError(f"pcscd exited at start-up: {out.strip()[-500:]}")
            seen = list_readers()
            if seen is not None and all(r in seen for r in self.readers):
                return
            time.sleep(0.05)
        self.stop()
        raise PcscdError(
            f"pcscd did not list {list(self.readers)} within {self.ready_timeout}s "
            f"(saw {seen}); is vsmartcard-vpcd installed?"
        )

    def release(self) -> None:
        """Forget the pcscd we started without stopping it (others use it; ``auto_exit`` ends it later)."""
        self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("pcscd (pid %d) ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait(timeout=5)
        if self._output is not None:
            self._output.close()
            self._output = None

    def output(self) -> str:
        """What the pcscd we started has logged so far (empty when we did not start it)."""
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
