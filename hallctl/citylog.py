"""The city feed's record: one row of a hall's event log, as it travels to the city and back out of it.

Shared by the hall (``hallctl/store/citylog.py`` reads the rows, ``hallctl/mqtt/citylog.py``
publishes them) and the central (``hallctl/central/``) so both sides agree on one shape
without the central importing the hall's store or service. The fields are the columns of
the hall's ``event_log`` table (``seq, at, kind, ticket_id, window, data``), so report code
written over the hall's event log reads the central's rows unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

# The hall's event-log rows on MQTT: ``hallctl/<hall>/event/log`` (QoS 1, not retained).
LOG_EVENT = "log"

# The kinds a report reads (hallctl/reports/), from the hall's store or the central's copy alike;
# the others (appointments, reprints, day_opened…) are not fetched for reports.
REPORT_KINDS = (
    "issued",
    "called",
    "recalled",
    "serving",
    "finished",
    "no_show",
    "transferred",
    "cancelled",
    "evaluated",
    "signed_in",
    "signed_out",
)
SIGN_KINDS = ("signed_in", "signed_out")


@dataclasses.dataclass(frozen=True, slots=True)
class EventLogRow:
    seq: int
    at: str  # ISO 8601 with the hall's offset, as the hall stored it
    kind: str
    ticket_id: str | None
    window: int | None
    data: dict[str, Any]

    def wire(self, hall: str, *, replay: bool = False) -> str:
        """The MQTT payload: the row plus the hall id (and ``replay`` when the central asked for it)."""
        out: dict[str, Any] = {"hall": hall, **dataclasses.asdict(self)}
        if replay:
            out["replay"] = True
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class BadLogRow(ValueError):
    """A feed message that is not a hall event-log row (the central counts and skips it)."""


def parse_wire(payload: bytes | str) -> tuple[str, EventLogRow]:
    """(hall, row) from an ``event/log`` payload; :class:`BadLogRow` for anything else."""
    try:
        d = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadLogRow(f"not JSON: {exc}") from exc
    if not isinstance(d, dict):
        raise BadLogRow("not an object")
    hall, seq, at, kind = d.get("hall"), d.get("seq"), d.get("at"), d.get("kind")
    ticket_id, window, data = d.get("ticket_id"), d.get("window"), d.get("data")
    if not isinstance(hall, str) or not hall:
        raise BadLogRow("hall missing")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise BadLogRow("seq must be a positive integer")
    if not isinstance(at, str) or not isinstance(kind, str):
        raise BadLogRow("at and kind must be strings")
    if ticket_id is not None and not isinstance(ticket_id, str):
        raise BadLogRow("ticket_id must be a string or null")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
        raise BadLogRow("window must be an integer or null")
    if not isinstance(data, dict):
        raise BadLogRow("data must be an object")
    return hall, EventLogRow(seq, at, kind, ticket_id, window, data)
