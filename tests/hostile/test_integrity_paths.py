"""Item 12: an unusable database path is one line naming the path and the cause, exit 2.

Cases, as the tests run (often as root, where ``chmod 0555`` does not stop writes):

* the database's directory is a regular file (``file/hallctl.db``), and a missing directory
  below a regular file (``file/sub/hallctl.db``): ENOTDIR, testable as any user;
* a read-only filesystem (EROFS): a read-only tmpfs mounted in a private mount namespace
  (``unshare --mount --map-root-user``), both for an existing directory and for a missing one
  below it. Where user namespaces are not allowed this case is skipped with that reason.

Not tested: ``chmod 0555`` (EACCES) as a non-root user; the code path is the same OSError.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.core_helpers import REPO
from tests.hostile.integrity_helpers import daemon, run_to_exit


def assert_one_line(result: subprocess.CompletedProcess[str], path: str, cause: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"not one line: {result.stderr[-2000:]}"
    assert path in lines[0] and cause in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("below", ["hallctl.db", "sub/hallctl.db"])
def test_database_under_a_regular_file_is_one_line_exit_2(tmp_path: Path, below: str) -> None:
    blocker = tmp_path / "regular_file"
    blocker.write_text("not a directory")
    db = str(blocker / below)
    d = daemon(tmp_path / "hall", {"path": db})
    assert_one_line(run_to_exit(d), db, "Not a directory")


def _userns_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


@pytest.mark.skipif(not _userns_ok(), reason="unshare --mount --map-root-user not permitted here (no user namespaces)")
@pytest.mark.parametrize("below", ["hallctl.db", "missing/hallctl.db"])
def test_read_only_filesystem_is_one_line_exit_2(tmp_path: Path, below: str) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    db = str(ro / below)
    d = daemon(tmp_path / "hall", {"path": db})
    d.write_config()
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && exec "$2" -m hallctl.cli -c "$3" run'
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--map-root-user",
            "sh",
            "-c",
            script,
            "sh",
            str(ro),
            sys.executable,
            str(d.config_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert_one_line(result, db, "Read-only file system")
