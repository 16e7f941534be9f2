"""Item 9: the shipped unit keeps ``systemd-analyze security`` exposure at or below 2.0,
is Type=notify with a watchdog, and bounds memory and tasks."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.core.core_helpers import REPO

UNIT = REPO / "systemd" / "hallctl.service"
MAX_EXPOSURE = 2.0


def _offline_supported() -> bool:
    if shutil.which("systemd-analyze") is None:
        return False
    helptext = subprocess.run(["systemd-analyze", "--help"], capture_output=True, text=True, timeout=30).stdout
    return "--offline" in helptext


def test_unit_is_notify_with_watchdog_and_limits() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "MemoryMax=",
        "TasksMax=",
        "RestartPreventExitStatus=2",
    ):
        assert re.search(rf"^{re.escape(line)}", text, re.M), line


@pytest.mark.skipif(not _offline_supported(), reason="systemd-analyze without --offline (systemd < 250)")
def test_unit_security_exposure_at_most_2() -> None:
    res = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", res.stdout)
    assert m, res.stdout[-2000:] + res.stderr[-2000:]
    assert float(m.group(1)) <= MAX_EXPOSURE, res.stdout
