"""``hallctl central FILE report``: the central's report as a file, the same answer as its HTTP route.

Reads PostgreSQL directly (``[postgres] dsn``), so it works while the central runs and
without it. JSON to stdout by default, as ``hallctl report`` at a hall.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hallctl.central import reports
from hallctl.central.config import CentralConfig
from hallctl.central.store import CentralStore
from hallctl.central.web_reports import render
from hallctl.errors import HallctlError


async def _report(cfg: CentralConfig, kind: reports.Kind, period: str, hall: str | None) -> dict[str, Any]:
    reader = CentralStore(cfg.postgres.dsn)
    await reader.connect()
    try:
        return await reports.report(reader, cfg, kind, period, hall, datetime.now(ZoneInfo(cfg.http.timezone)))
    finally:
        await reader.close()


def run(
    cfg: CentralConfig,
    *,
    day: str | None,
    month: str | None,
    hall: str | None,
    fmt: str,
    table: str | None,
    lang: str,
    output: str | None,
) -> int:
    """Write the report; 2 with a sentence on stderr for a bad day, an unknown hall or a bad table."""
    now = datetime.now(ZoneInfo(cfg.http.timezone))
    kind: reports.Kind = "monthly" if month else "daily"
    period = month or day or now.date().isoformat()
    if fmt == "xlsx" and not output:
        print("hallctl central: --format xlsx needs -o FILE", file=sys.stderr)
        return 2
    try:
        rep = asyncio.run(_report(cfg, kind, period, hall))
        if fmt == "json":
            body = (json.dumps(rep, ensure_ascii=False, indent=2) + "\n").encode()
        else:
            body, _, _ = render(rep, "xlsx" if fmt == "xlsx" else "csv", table, "en" if lang == "en" else "zh")
    except ValueError:
        print(f"hallctl central: no such {'month' if month else 'day'}: {period}", file=sys.stderr)
        return 2
    except HallctlError as exc:
        print(f"hallctl central: {exc.message_en if lang == 'en' else exc.message}", file=sys.stderr)
        return 2
    if output:
        Path(output).write_bytes(body)
        print(f"{rep['kind']} report {rep['period']} ({hall or 'city'}) written to {output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0
