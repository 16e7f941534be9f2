"""JSON views of domain objects. Masked by default; full holder data only on request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hallctl.config import CategoryConfig
from hallctl.engine import Holder, Ticket, waiting_time


def ticket_view(
    t: Ticket, *, waiting_ahead: int | None = None, estimated_wait_s: float | None = None, qr: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id,
        "number": t.number,
        "category": t.category,
        "day": t.day.isoformat(),
        "state": t.state,
        "priority": t.priority,
        "priority_reason": t.priority_reason,
        "channel": t.channel,
        "issued_at": t.issued_at.isoformat(),
        "called_at": t.called_at.isoformat() if t.called_at else None,
        "serving_at": t.serving_at.isoformat() if t.serving_at else None,
        "finished_at": t.finished_at.isoformat() if t.finished_at else None,
        "window": t.window,
        "staff": t.staff,
        "recalls": t.recalls,
        "holder": t.holder_masked,
        "kiosk": t.kiosk,
        "origin_id": t.origin_id,
        "target_window": t.target_window,
        "appointment_code": t.appointment_code,
        "end_reason": t.end_reason,
        "print_failed": t.print_failed,
    }
    if waiting_ahead is not None:
        out["waiting_ahead"] = waiting_ahead
        out["position"] = waiting_ahead + 1
    if estimated_wait_s is not None:
        out["estimated_wait_s"] = estimated_wait_s
    if qr is not None:
        out["qr"] = qr
    return out


def holder_view(h: Holder) -> dict[str, Any]:
    """Full personal data: only for an authenticated window or admin request."""
    return {
        "name": h.name,
        "id_number": h.id_number,
        "sex": h.sex,
        "birth": h.birth.isoformat() if h.birth else None,
        "nation": h.nation,
        "address": h.address,
        "card_type": h.card_type,
        "authority": h.authority,
        "valid_to": h.valid_to.isoformat() if h.valid_to else None,
    }


def window_ticket_view(t: Ticket, cat: CategoryConfig | None, now: datetime) -> dict[str, Any]:
    """A ticket as the window terminal shows it: where a transfer came from, and its clocks against
    the category's limits (the wait against ``target_wait_minutes``, the service against
    ``service_minutes``, the same limit as supervision's ``service_overrun``), so the clerk sees
    overtime without opening the alerts. The note is for staff only: no other view carries it."""
    out = ticket_view(t)
    out["from_window"] = t.from_window
    out["transfer_note"] = t.transfer_note
    waited = waiting_time(t, now) if t.state == "waiting" else waiting_time(t)
    target = cat.target_wait_minutes * 60 if cat is not None else None
    out["wait_s"] = round(waited.total_seconds()) if waited is not None else None
    out["target_wait_s"] = target
    out["wait_over"] = bool(target is not None and waited is not None and waited.total_seconds() > target)
    service = (now - t.serving_at).total_seconds() if t.state == "serving" and t.serving_at else None
    limit = cat.service_minutes * 60 if cat is not None else None
    out["service_s"] = round(service) if service is not None else None
    out["service_limit_s"] = limit
    out["service_over"] = bool(limit is not None and service is not None and service > limit)
    return out
