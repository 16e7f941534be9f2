"""The audit log as files: one rendering for the console's export and ``hallctl audit export``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

AUDIT_COLUMNS = ("seq", "at", "actor", "action", "target", "before", "after", "prev_hash", "hash")


def audit_text(rows: list[dict[str, Any]], fmt: str) -> str:
    """Audit rows as CSV (before/after as JSON text) or JSON Lines: one format for the API and the CLI."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(AUDIT_COLUMNS)
    for r in rows:
        w.writerow(
            [
                json.dumps(r[c], ensure_ascii=False, sort_keys=True) if c in ("before", "after") else r[c]
                for c in AUDIT_COLUMNS
            ]
        )
    return buf.getvalue()
