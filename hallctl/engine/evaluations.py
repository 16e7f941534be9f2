"""The engine's 好差评 decisions: a rating tied to the ticket served, and the pad's request for one."""

from __future__ import annotations

from datetime import datetime

from hallctl import events as ev
from hallctl.config import Config
from hallctl.engine.decisions import TICKET_STATE_ZH, window_config
from hallctl.engine.model import (
    LEVEL_LABELS,
    UNRATED_LABEL,
    Decision,
    Evaluation,
    LogRow,
)
from hallctl.engine.queue import HallQueue
from hallctl.errors import Conflict, Refused


def evaluate(
    q: HallQueue,
    cfg: Config,
    window: int,
    level: int | None,
    channel: str,
    now: datetime,
    ticket_id: str | None = None,
    reasons: tuple[str, ...] = (),
) -> Decision:
    """Record 好差评 for the ticket just finished (or being served) at ``window``.

    One rating per ticket (一次一评): a second press is refused, not overwritten.
    ``level=None`` records 未评价 when the pad timed out; never a default grade.
    """
    window_config(cfg, window)
    if level is not None and level not in LEVEL_LABELS:
        raise Refused("bad_level", f"评价等级须为1至5，收到{level}", f"level must be 1..5, got {level}")
    w = q.window(window)
    if ticket_id is None:
        cur = q.tickets.get(w.current) if w.current else None
        ticket_id = cur.id if cur is not None and cur.state == "serving" else w.last_finished
    t = q.tickets.get(ticket_id) if ticket_id else None
    if t is None:
        raise Conflict(
            "no_ticket_to_evaluate",
            f"{window}号窗口没有可评价的已办结号票",
            f"window {window} has no finished ticket to evaluate",
        )
    if t.window != window:
        raise Refused(
            "ticket_not_at_window",
            f"{t.number}不是在{window}号窗口办理的",
            f"ticket {t.number} was not served at window {window}",
        )
    if t.state not in ("serving", "done"):
        raise Conflict(
            "ticket_not_served",
            f"{t.number}{TICKET_STATE_ZH.get(t.state, t.state)}，不能评价",
            f"ticket {t.number} is {t.state}",
        )
    if t.id in q.evaluated:
        raise Conflict("already_evaluated", f"{t.number}已评价过", f"ticket {t.number} already has an evaluation")
    d = Decision(at=now)
    e = Evaluation(ticket_id=t.id, level=level, window=window, staff=t.staff, channel=channel, at=now, reasons=reasons)
    d.evaluations.append(e)
    label = LEVEL_LABELS[level] if level is not None else UNRATED_LABEL
    d.log.append(LogRow("evaluated", t.id, window, {"level": level, "channel": channel}))
    d.events.append(
        ev.EvaluationRecorded(
            at=now,
            ticket_id=t.id,
            number=t.number,
            window=window,
            staff=t.staff,
            level=level,
            label=label,
            channel=channel,
        )
    )
    if level is not None and level <= 2:
        d.events.append(
            ev.Alert(
                at=now,
                alert="bad_evaluation",
                severity="warning",
                message=f"{t.number} 在{window}号窗口评价为{label}，需核实整改",
                message_en=f"{t.number} rated {level}/5 at window {window}: to be verified and rectified",
                subject=t.number,
                data={"window": window, "level": level, "staff": t.staff},
            )
        )
    d.result = e
    return d


def request_evaluation(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    """The clerk asks the visitor to rate (the pad asks again); the clerk never rates. Logged."""
    window_config(cfg, window)
    w = q.window(window)
    cur = q.tickets.get(w.current) if w.current else None
    ticket_id = cur.id if cur is not None and cur.state == "serving" else w.last_finished
    t = q.tickets.get(ticket_id) if ticket_id else None
    if t is None or t.window != window or t.state not in ("serving", "done"):
        raise Conflict(
            "no_ticket_to_evaluate",
            f"{window}号窗口没有可评价的已办结号票",
            f"window {window} has no served ticket to evaluate",
        )
    if t.id in q.evaluated:
        raise Conflict("already_evaluated", f"{t.number}已评价过", f"ticket {t.number} already has an evaluation")
    d = Decision(at=now)
    d.log.append(LogRow("evaluation_requested", t.id, window, {"number": t.number}))
    staff = cfg.staff_by_id(t.staff) if t.staff else None
    d.events.append(
        ev.EvaluationRequested(
            at=now,
            ticket_id=t.id,
            number=t.number,
            window=window,
            staff=t.staff,
            staff_name=staff.name if staff else None,
        )
    )
    d.result = t
    return d
