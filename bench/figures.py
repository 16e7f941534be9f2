"""The figures every bench records: one JSON file for ``make bench`` and one table beside the goals.

Each bench script measures in its own run and calls :func:`record` with what it found;
``bench/run_all.py`` (``make bench``) runs the scripts one after another, each appending
to the same file (``BENCH_JSON``, default ``bench/results.json``), then prints every
figure beside its goal. A figure is a ratio wherever a baseline can be measured in the
same run (bare SQLite commits, a bare broker round trip, the wire time of the same bytes),
because absolute times move with the machine and ratios move much less.

A goal is a comparison (``<=`` or ``>=``) against a number in the figure's own unit;
a figure without a goal is printed for information.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PATH = REPO / "bench" / "results.json"

Compare = Literal["<=", ">="]


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure: ``bench`` is the script, ``name`` what was measured."""

    bench: str
    name: str
    value: float
    unit: str
    goal: float | None = None
    compare: Compare = "<="
    issue_goal: str = ""  # which goal of the performance issue it answers ("1", "2", ...), if any
    detail: str = ""  # how it was measured: rounds, baseline, load

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value <= self.goal if self.compare == "<=" else self.value >= self.goal


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank, rounding down), NaN for no values: the benches' p50/p95/p99."""
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def results_path() -> Path:
    return Path(os.environ.get("BENCH_JSON", str(DEFAULT_PATH)))


def machine() -> dict[str, Any]:
    """The machine and its load when the figures were taken (recorded beside them)."""
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "platform": platform.platform(),
    }


def record(*figures: Figure) -> None:
    """Append ``figures`` to the results file (replacing earlier ones of the same bench and name)."""
    path = results_path()
    data: dict[str, Any] = {"figures": []}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            data = {"figures": []}
    keep = {(f.bench, f.name) for f in figures}
    rows = [r for r in data.get("figures", []) if (r.get("bench"), r.get("name")) not in keep]
    for f in figures:
        row = dataclasses.asdict(f)
        row["met"] = f.met
        row["at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        row["machine"] = machine()
        rows.append(row)
    data["figures"] = rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load(path: Path | None = None) -> list[Figure]:
    p = path or results_path()
    if not p.exists():
        return []
    rows = json.loads(p.read_text(encoding="utf-8")).get("figures", [])
    fields = {f.name for f in dataclasses.fields(Figure)}
    return [Figure(**{k: v for k, v in r.items() if k in fields}) for r in rows]


def table(figures: list[Figure]) -> str:
    """The figures as a fixed-width table, each beside its goal and whether it is met."""
    lines = [f"{'goal':>4}  {'bench':<12} {'figure':<58} {'value':>12} {'unit':<10} {'target':>12}  met"]
    for f in sorted(figures, key=lambda f: (f.issue_goal or "9", f.bench, f.name)):
        target = f"{f.compare} {f.goal:g}" if f.goal is not None else ""
        met = {True: "yes", False: "NO", None: ""}[f.met]
        lines.append(
            f"{f.issue_goal:>4}  {f.bench:<12} {f.name[:58]:<58} {f.value:>12.4g} {f.unit[:10]:<10} {target:>12}  {met}"
        )
    return "\n".join(lines)
