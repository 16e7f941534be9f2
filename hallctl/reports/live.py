"""Today's live figures (the big screen's KPIs), from the service's memory: no database read."""

from __future__ import annotations

import statistics
from typing import Any

from hallctl.service import HallService


def live_figures(svc: HallService) -> dict[str, Any]:
    today = svc.today_tickets()
    waits = sorted(w for t in today if (w := t.wait_s) is not None)
    return {
        "day": svc.day.isoformat(),
        "issued": len(today),
        "waiting": sum(1 for t in today if t.state == "waiting"),
        "serving": sum(1 for t in today if t.state in ("called", "serving")),
        "done": sum(1 for t in today if t.state == "done"),
        "no_show": sum(1 for t in today if t.state == "no_show"),
        "avg_wait_s": round(statistics.fmean(waits), 1) if waits else None,
        "p90_wait_s": waits[min(len(waits) - 1, int(0.9 * len(waits)))] if waits else None,
        "categories": [svc.queue_state(c.prefix).to_dict() for c in svc.cfg.category],
        "windows": [svc.window_state(w.number).to_dict() for w in svc.cfg.window],
    }
