"""The central's HTTP side: the city dashboard page and the JSON it draws (docs/city.md).

Read-only and unauthenticated: it binds to loopback by default; put it behind the city's
reverse proxy (with its login) to show it on a wall. The figures of today come from two
places, as the issue asks: the state topics (waiting, climate, energy, status, alerts) kept
in memory by this process, and the stored rows (issues, calls, 好评率, service level) from
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hallctl.central.config import CentralConfig
from hallctl.central.ingest import HallLive, Ingestor
from hallctl.central.store import CentralStore, HallDay
from hallctl.central.web_reports import report_router


def _ui_dir() -> Path:
    # The pages' files, found without importing kiosk_ui (its package imports the hall's auth).
    spec = importlib.util.find_spec("kiosk_ui")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def hall_view(hid: str, names: tuple[str, str], live: HallLive, day: HallDay | None, band_c: float) -> dict[str, Any]:
    """One hall's card: pure, from the live state and the day's stored figures."""
    waiting = sum(int(q.get("waiting") or 0) for q in live.queues.values())
    zones = []
    for zid, z in sorted(live.climate.items()):
        cur, target = z.get("current"), z.get("target")
        in_band = None
        if isinstance(cur, int | float) and isinstance(target, int | float) and z.get("mode") != "off":
            in_band = abs(cur - target) <= band_c
        zones.append({"zone": zid, "current": cur, "target": target, "in_band": in_band, "action": z.get("action")})
    kwh = sum(float(e.get("kwh") or 0.0) for e in live.energy.values())
    d = day or HallDay()
    return {
        "id": hid,
        "name": names[0] or hid,
        "name_en": names[1] or names[0] or hid,
        "status": live.status,
        "waiting": waiting,
        "issued": d.issued,
        "finished": d.finished,
        "service_level": round(d.within_target / d.first_calls, 3) if d.first_calls else None,
        "satisfaction": round(d.good / d.rated, 3) if d.rated else None,
        "rated": d.rated,
        "alerts": [
            {k: a.get(k) for k in ("at", "alert", "severity", "message", "message_en", "subject")}
            for a in list(live.alerts)[-3:][::-1]
        ],
        "alerts_count": len(live.alerts),
        "zones": zones,
        "zones_in_band": sum(1 for z in zones if z["in_band"]),
        "zones_known": sum(1 for z in zones if z["in_band"] is not None),
        "energy_kwh": round(kwh, 1),
        "last_seq": d.last_seq,
    }


class DayFigures:
    """Today's stored figures, read at most once per ``[http] figures_s`` however many screens poll.

    The query reads the day's rows of every hall (≈ 250 ms for a 110-hall city-day on the
    development machine, bench/city_ingest.py), so screens share one answer.
    """

    def __init__(self, reader: CentralStore, cfg: CentralConfig) -> None:
        self.reader = reader
        self.cfg = cfg
        self._lock = asyncio.Lock()
        self._at = 0.0
        self._day: date | None = None
        self._figures: dict[str, HallDay] = {}

    async def get(self, day: date) -> dict[str, HallDay]:
        async with self._lock:
            if self._day != day or time.monotonic() - self._at >= self.cfg.http.figures_s:
                self._figures = await self.reader.day_figures(
                    day, self.cfg.http.service_level_s, self.cfg.http.timezone
                )
                self._day, self._at = day, time.monotonic()
            return self._figures


def city_app(cfg: CentralConfig, ingestor: Ingestor, reader: CentralStore) -> FastAPI:
    app = FastAPI(title="hallctl central", docs_url=None, redoc_url=None)
    ui = _ui_dir()
    app.mount("/static", StaticFiles(directory=ui / "static"), name="static")
    tz = ZoneInfo(cfg.http.timezone)
    names = {h.id: (h.name, h.name_en) for h in cfg.hall}
    day_cache = DayFigures(reader, cfg)
    app.include_router(report_router(cfg, reader))

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/city")

    @app.get("/city", include_in_schema=False)
    async def city_page() -> FileResponse:
        return FileResponse(
            ui / "pages" / "city.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/v1/health")
    async def health() -> JSONResponse:
        h = ingestor.health()
        return JSONResponse(h, status_code=200 if h["ok"] else 503)

    @app.get("/api/v1/city")
    async def city() -> dict[str, Any]:
        now = datetime.now(tz)
        figures = await day_cache.get(now.date())
        ids = list(names) + sorted((set(ingestor.live) | set(figures)) - set(names))
        halls = [
            hall_view(h, names.get(h, ("", "")), ingestor.live.get(h, HallLive()), figures.get(h), cfg.http.band_c)
            for h in ids
        ]
        first_calls = sum(f.first_calls for f in figures.values())
        rated = sum(f.rated for f in figures.values())
        totals = {
            "halls": len(halls),
            "online": sum(1 for h in halls if h["status"] == "online"),
            "waiting": sum(h["waiting"] for h in halls),
            "issued": sum(h["issued"] for h in halls),
            "finished": sum(h["finished"] for h in halls),
            "service_level": round(sum(f.within_target for f in figures.values()) / first_calls, 3)
            if first_calls
            else None,
            "satisfaction": round(sum(f.good for f in figures.values()) / rated, 3) if rated else None,
            "alerts": sum(h["alerts_count"] for h in halls),
            "zones_in_band": sum(h["zones_in_band"] for h in halls),
            "zones_known": sum(h["zones_known"] for h in halls),
            "energy_kwh": round(sum(h["energy_kwh"] for h in halls), 1),
        }
        return {"at": now.isoformat(), "day": now.date().isoformat(), "totals": totals, "halls": halls}

    @app.get("/api/v1/halls/{hall}/events")
    async def events(
        hall: str, first: Annotated[date, Query(alias="from")], last: Annotated[date, Query(alias="to")]
    ) -> list[dict[str, Any]]:
        """A hall's event-log rows of a day range, as the hall's own log holds them (report input)."""
        if (last - first).days > 92:
            raise HTTPException(422, "at most 93 days at a time")
        return [
            {"seq": r.seq, "at": r.at, "kind": r.kind, "ticket_id": r.ticket_id, "window": r.window, "data": r.data}
            for r in await reader.event_rows(hall, first, last, cfg.http.timezone)
        ]

    return app
