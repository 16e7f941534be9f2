"""JSON views of domain objects. Masked by default; full holder data only on request."""

from __future__ import annotations

from typing import Any

from hallctl.engine import Holder, Ticket


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
