"""PostgreSQL from Debian's packages, started by the tests in a temporary directory.

initdb refuses to run as root (tests and CI run as root here), so as root the server runs as
the ``postgres`` system user (``runuser``) in a temp dir it owns; as anyone else it runs as
that user. Unix socket in the temp dir and a free TCP port on loopback, nothing shared.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.mqtt.mqtt_helpers import free_port


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise AssertionError(f"PostgreSQL's {name} not found: install Debian's postgresql (scripts/setup.sh)")
    return found[-1]


class Postgres:
    def __init__(self, *, fsync: bool = False) -> None:
        # Not under pytest's tmp dir: /tmp/pytest-of-root is 0700, closed to the postgres user.
        self.dir = Path(tempfile.mkdtemp(prefix="hallctl-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.fsync = fsync
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.user = "postgres" if self._as else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        r = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=timeout, check=False)
        if r.returncode != 0:
            raise AssertionError(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{self.log()}")

    def start(self) -> None:
        if not self.data.exists():
            self._run(
                pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
                "--locale=C", "--no-sync",
            )  # fmt: skip
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync={'on' if self.fsync else 'off'}"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [*self._as, pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        p = self.dir / "log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def dsn(self, db: str = "postgres") -> str:
        return f"host={self.dir} port={self.port} dbname={db} user={self.user}"

    def new_database(self) -> str:
        """A fresh database for one test; its DSN."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)
