"""The climate energy report as CSV (``GET /api/v1/climate/energy.csv``): one row per zone and day."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from hallctl.climate.energy import RUN_MODES

COLUMNS = (
    "day",
    "zone",
    "kwh",
    *(f"run_hours_{m}" for m in RUN_MODES),
    "open_hours",
    "in_band_hours",
    "share_in_band",
    "degree_hours",
)


def energy_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """``rows`` as :meth:`hallctl.climate.energy.ZoneDay.to_dict` gives them; an empty share is an empty cell."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in rows:
        run = r["run_hours"]
        assert isinstance(run, Mapping)
        share = r["share_in_band"]
        w.writerow(
            [
                r["day"],
                r["zone"],
                r["kwh"],
                *(run[m] for m in RUN_MODES),
                r["open_hours"],
                r["in_band_hours"],
                "" if share is None else share,
                r["degree_hours"],
            ]
        )
    return out.getvalue()
