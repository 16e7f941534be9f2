"""What the admin console costs: one live config edit, and one password check.

A live edit (``hallctl/admin/edits.py``) parses the config file with tomlkit (keeping its
comments), changes one entry, validates the whole document with the config model and
renders it again; that runs in a thread, once per change a person makes, but it holds the
console's edit lock and a core while it runs. A login costs one argon2id verification
(argon2-cffi's defaults), in a thread too. This bench times both on the demo hall's config
in process CPU time, with tomllib's plain load of the same file in the same rounds as the
baseline (the ratio is what to compare across machines; the absolute figures move with the
shared machine).

Run: .venv/bin/python bench/admin_edit.py [--n 50] [--no-record]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import figures
from hallctl import config
from hallctl.admin import configfile
from hallctl.admin.accounts import _check_password, hash_password
from hallctl.demo import DEMO_TOML


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    text = DEMO_TOML
    edit_s: list[float] = []
    base_s: list[float] = []
    for i in range(args.n):
        t0 = time.process_time()
        doc = configfile.parse(text)
        configfile.put_entry(doc, "window", "1", {"name": f"1号窗口 {i}", "categories": ["A", "B"]})
        configfile.validate(doc)
        doc.as_string()
        edit_s.append(time.process_time() - t0)
        t0 = time.process_time()
        config.parse(tomllib.loads(text))
        base_s.append(time.process_time() - t0)
    hashed = hash_password("correct horse battery")
    login_s: list[float] = []
    for _ in range(max(3, args.n // 10)):
        t0 = time.process_time()
        assert _check_password(hashed, "correct horse battery")
        login_s.append(time.process_time() - t0)
    edit_ms = figures.percentile(edit_s, 50) * 1000
    base_ms = figures.percentile(base_s, 50) * 1000
    login_ms = figures.percentile(login_s, 50) * 1000
    ratio = edit_ms / base_ms if base_ms else float("nan")
    print(f"live edit (tomlkit parse + change + validate + render): median {edit_ms:.1f} ms CPU")
    print(f"plain load (tomllib + validate), same rounds:           median {base_ms:.1f} ms CPU")
    print(f"ratio edit / plain load: {ratio:.1f}x")
    print(f"argon2id verification (one login): median {login_ms:.1f} ms CPU")
    if not args.no_record:
        detail = f"demo hall config, {args.n} rounds, process CPU, medians; shared machine"
        figures.record(
            figures.Figure(bench="admin_edit", name="live edit CPU", value=round(edit_ms, 2), unit="ms", detail=detail),
            figures.Figure(
                bench="admin_edit", name="edit / plain load", value=round(ratio, 2), unit="x", detail=detail
            ),
            figures.Figure(
                bench="admin_edit", name="login argon2 CPU", value=round(login_ms, 2), unit="ms", detail=detail
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
