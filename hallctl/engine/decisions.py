"""The engine's commands: each takes the state, the config and the time and returns a Decision."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hallctl import events as ev
from hallctl.config import CategoryConfig, Config, KioskConfig, WindowConfig
from hallctl.engine.model import (
    ACTIVE,
    Decision,
    Holder,
    LogRow,
    Ticket,
    WindowStatus,
    waiting_time,
)
from hallctl.engine.policy import (
    announcement,
    business_day,
    elderly,
    is_open,
    print_job,
    waiting_ahead,
)
from hallctl.engine.queue import HallQueue
from hallctl.errors import Conflict, NotFound, Refused
from hallctl.voice.spoken import announcement_words

# ---- commands -------------------------------------------------------------------

Signer = Callable[[str, datetime], str]
"""Signs a ticket's QR token at a given time (HMAC with an explicit time: pure). The service passes it in."""

PRINTED_CHANNELS = ("kiosk", "appointment", "guide")  # guide: at [guide] kiosk or the kiosk it named


@dataclasses.dataclass(frozen=True, slots=True)
class IssueRequest:
    category: str
    channel: str = "api"  # kiosk, api, appointment, guide
    kiosk: str | None = None
    holder: Holder | None = None
    holder_masked: str | None = None
    id_hash: str | None = None
    priority: str | None = None  # "green" when a guide or clerk grants the green channel
    priority_reason: str | None = None
    ignore_hours: bool = False


def category_config(cfg: Config, prefix: str) -> CategoryConfig:
    cat = cfg.category_by_prefix(prefix)
    if cat is None:
        raise NotFound("unknown_category", f"没有{prefix}类业务", f"no category with prefix {prefix!r}")
    return cat


def window_config(cfg: Config, number: int) -> WindowConfig:
    w = cfg.window_by_number(number)
    if w is None:
        raise NotFound("unknown_window", f"没有{number}号窗口", f"no window {number}")
    return w


def kiosk_config(cfg: Config, kiosk_id: str) -> KioskConfig:
    k = cfg.kiosk_by_id(kiosk_id)
    if k is None:
        raise NotFound("unknown_kiosk", f"没有取号机 {kiosk_id}", f"no kiosk {kiosk_id}")
    return k


def new_ticket(q: HallQueue, cfg: Config, d: Decision, cat: CategoryConfig, now: datetime, **fields: Any) -> Ticket:
    day = q.day
    key = (day, cat.prefix)
    seq = max(q.counters.get(key, 0), d.counters.get(key, 0)) + 1
    d.counters[key] = seq
    number = f"{cat.prefix}{seq:0{cat.digits}d}"
    fields.setdefault("sort_at", now)
    return Ticket(
        id=f"{day.isoformat().replace('-', '')}-{number}",  # YYYYMMDD-A001; strftime costs 1.5 µs per ticket
        day=day,
        category=cat.prefix,
        seq=seq,
        number=number,
        state="waiting",
        issued_at=now,
        **fields,
    )


def issue(q: HallQueue, cfg: Config, req: IssueRequest, now: datetime, sign: Signer | None = None) -> Decision:
    """Issue a ticket. The result is ``(ticket, waiting_ahead, qr)``; ``qr`` is ``""`` without a signer.

    At a kiosk the decision also carries the one print job (``PrintRequested``, for its printer),
    with the same count ahead and the same QR token as the result.
    """
    cat = category_config(cfg, req.category)
    if not req.ignore_hours and not is_open(cat, now, cfg):
        raise Refused("category_closed", f"{cat.name}现在不办理", f"{cat.name_en or cat.prefix} is closed now")
    if req.id_hash is not None:
        used = q.id_uses(cat.prefix, req.id_hash)
        if used >= cfg.queue.per_id_daily_limit:
            raise Refused(
                "id_limit_reached",
                f"今日该证件已在{cat.name}取号{used}次，已达上限",
                f"this ID card already took {used} tickets for {cat.name_en or cat.prefix} today (limit)",
            )
    priority: str = "normal"
    reason: str | None = None
    if req.priority == "green":
        priority, reason = "green", req.priority_reason or "green_channel"
    elif elderly(req.holder, now, cfg):
        priority, reason = "green", "elderly"
    d = Decision(at=now)
    t = new_ticket(
        q,
        cfg,
        d,
        cat,
        now,
        priority=priority,
        priority_reason=reason,
        channel=req.channel,
        kiosk=req.kiosk,
        holder_masked=req.holder_masked,
        id_hash=req.id_hash,
    )
    return finish_issue(q, cfg, d, t, req.holder, sign)


def finish_issue(
    q: HallQueue, cfg: Config, d: Decision, t: Ticket, holder: Holder | None, sign: Signer | None
) -> Decision:
    d.tickets.append(t)
    if holder is not None:
        d.holders.append((t.id, holder))
    ahead = waiting_ahead(q, t)
    data: dict[str, Any] = {"number": t.number, "category": t.category, "priority": t.priority, "channel": t.channel}
    if t.priority_reason is not None:
        data["reason"] = t.priority_reason  # the green-channel reason a guide recorded (or elderly)
    d.log.append(LogRow("issued", t.id, None, data))
    d.events.append(
        ev.TicketIssued(
            at=d.at,
            ticket_id=t.id,
            number=t.number,
            category=t.category,
            priority=t.priority,
            channel=t.channel,
            kiosk=t.kiosk,
            holder=t.holder_masked,
            waiting_ahead=ahead,
        )
    )
    qr = sign(t.id, d.at) if sign is not None else ""
    if qr and t.channel in PRINTED_CHANNELS and t.kiosk is not None and cfg.kiosk_by_id(t.kiosk) is not None:
        d.events.append(ev.PrintRequested(at=d.at, ticket_id=t.id, kiosk=t.kiosk, job=print_job(cfg, t, ahead, qr)))
    d.result = (t, ahead, qr)
    return d


def reprint(q: HallQueue, cfg: Config, t: Ticket, kiosk: str | None, now: datetime, sign: Signer) -> Decision:
    """Print ``t`` again (at ``kiosk``, or the kiosk it was issued at), with a fresh QR token; logged."""
    target = kiosk or t.kiosk
    if target is None or cfg.kiosk_by_id(target) is None:
        raise Refused(
            "no_printer",
            "该号票不是在取号机取的，请指定补打的取号机",
            "this ticket was not issued at a kiosk; name the kiosk to print at",
        )
    current = q.tickets.get(t.id, t)
    ahead = waiting_ahead(q, current) if current.state == "waiting" else 0
    qr = sign(current.id, now)
    d = Decision(at=now)
    d.log.append(LogRow("reprinted", current.id, None, {"number": current.number, "kiosk": target}))
    d.events.append(
        ev.PrintRequested(at=now, ticket_id=current.id, kiosk=target, job=print_job(cfg, current, ahead, qr))
    )
    d.result = current
    return d


def print_result(
    q: HallQueue, t: Ticket, kiosk: str, printed: bool, reason: str | None, now: datetime
) -> Decision | None:
    """The kiosk printer's outcome for ``t``: a failure marks the ticket (logged ``print_failed``),
    a print after a failure clears the mark (logged ``print_recovered``); anything else changes nothing."""
    current = q.tickets.get(t.id, t)
    if current.print_failed != printed:
        return None  # already marked (another failure) or already fine (the usual print)
    d = Decision(at=now)
    d.tickets.append(dataclasses.replace(current, print_failed=not printed))
    data: dict[str, Any] = {"number": current.number, "kiosk": kiosk}
    if not printed:
        data["reason"] = reason or "print_failed"
    d.log.append(LogRow("print_recovered" if printed else "print_failed", current.id, None, data))
    d.result = d.tickets[0]
    return d


def _finish_current(q: HallQueue, cfg: Config, d: Decision, w: WindowStatus, now: datetime) -> WindowStatus:
    if w.current is None:
        return w
    cur = q.tickets.get(w.current)
    if cur is None or cur.state not in ("called", "serving"):
        return dataclasses.replace(w, current=None)
    done = dataclasses.replace(cur, state="done", finished_at=now, serving_at=cur.serving_at or cur.called_at)
    d.tickets.append(done)
    service_s = (now - done.serving_at).total_seconds() if done.serving_at else None
    d.log.append(LogRow("finished", done.id, w.number, {"number": done.number, "service_s": service_s}))
    d.events.append(
        ev.TicketFinished(
            at=now,
            ticket_id=done.id,
            number=done.number,
            category=done.category,
            window=w.number,
            staff=done.staff,
            wait_s=done.wait_s,
            service_s=service_s,
        )
    )
    staff = cfg.staff_by_id(w.staff) if w.staff else None
    d.events.append(
        ev.EvaluationRequested(
            at=now,
            ticket_id=done.id,
            number=done.number,
            window=w.number,
            staff=done.staff,
            staff_name=staff.name if staff else None,
        )
    )
    return dataclasses.replace(w, current=None, last_finished=done.id)


def _call(cfg: Config, d: Decision, w: WindowStatus, t: Ticket, now: datetime, *, recall: int = 0) -> WindowStatus:
    wcfg = window_config(cfg, w.number)
    # A no-show called back by number is live again: its finish time and reason no longer hold.
    called = dataclasses.replace(
        t,
        state="called",
        called_at=now,
        first_called_at=t.first_called_at or now,
        window=w.number,
        staff=w.staff,
        recalls=recall,
        finished_at=None,
        end_reason=None,
    )
    d.tickets.append(called)
    data: dict[str, Any] = {"number": t.number, "recall": recall}
    if w.staff is not None:
        data["staff"] = w.staff  # who called: the log alone says who served whom (the city has no sign-ins)
    d.log.append(LogRow("recalled" if recall else "called", t.id, w.number, data))
    d.events.append(called_event(cfg, called, wcfg, recall, now))
    d.result = called
    return dataclasses.replace(w, current=t.id)


def called_event(cfg: Config, t: Ticket, wcfg: WindowConfig, recall: int, at: datetime) -> ev.TicketCalled:
    """The call of ``t`` at ``wcfg``, with its announcement (zh and en) built here, once.

    Screens, MQTT and the voice endpoint all say and show this event's text: the caption
    (``announcement``) and, word for word, what the voice says (``spoken``).
    """
    text, text_en = announcement(t.number, wcfg.number)
    return ev.TicketCalled(
        at=at,
        ticket_id=t.id,
        number=t.number,
        category=t.category,
        window=wcfg.number,
        window_name=wcfg.name or f"{wcfg.number}号窗口",
        recall=recall,
        announcement=text,
        announcement_en=text_en,
        spoken=announcement_words(t.number, wcfg.number, cfg.screen.number_reading),
    )


def call_next(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    wcfg = window_config(cfg, window)
    w = q.window(window)
    if w.paused:
        raise Conflict(
            "window_paused", f"{window}号窗口已暂停服务，请先恢复", f"window {window} is paused; resume it first"
        )
    _require_staff(cfg, w)
    d = Decision(at=now)
    w = _clear_current(q, cfg, d, w, now)
    t = q.next_for(wcfg, w, now, cfg)
    if t is None:
        d.windows.append(w)
        d.result = None
        return d
    streak = w.priority_streak + 1 if t.priority != "normal" else 0
    w = _call(cfg, d, dataclasses.replace(w, priority_streak=streak), t, now)
    d.windows.append(w)
    return d


def for_window(t: Ticket, wcfg: WindowConfig) -> bool:
    """May this window call ``t``? A ticket transferred to a window is that window's; others are its categories'."""
    if t.target_window is not None:
        return t.target_window == wcfg.number
    return t.category in wcfg.categories


def call_ticket(
    q: HallQueue, cfg: Config, window: int, number: str, now: datetime, *, override_by: str | None = None
) -> Decision:
    """Call a ticket by number: one of this window's categories or transferred to it.

    ``override_by`` (who, for the log: the service passes it only for an admin) calls any
    waiting ticket; the override is a row of the event log.
    """
    wcfg = window_config(cfg, window)
    w = q.window(window)
    _require_staff(cfg, w)
    t = q.tickets.get(number) or q.find_number(number)
    if t is None:
        raise NotFound("unknown_ticket", f"今天没有{number}号", f"no ticket {number} today")
    if t.state not in ("waiting", "no_show"):
        zh = TICKET_STATE_ZH.get(t.state, t.state)
        raise Conflict(
            "ticket_not_waiting", f"{t.number}{zh}，不在等候", f"ticket {t.number} is {t.state}, not waiting"
        )
    if override_by is None and not for_window(t, wcfg):
        raise Conflict(
            "not_for_this_window",
            f"{t.number}不在{window}号窗口办理",
            f"ticket {t.number} is not for window {window} (other category or transferred elsewhere)",
        )
    d = Decision(at=now)
    if override_by is not None:
        d.log.append(
            LogRow(
                "call_override",
                t.id,
                window,
                {"number": t.number, "by": override_by, "for_window": for_window(t, wcfg)},
            )
        )
    w = _clear_current(q, cfg, d, w, now)
    d.windows.append(_call(cfg, d, w, t, now))
    return d


def _current(q: HallQueue, window: int, states: tuple[str, ...]) -> tuple[WindowStatus, Ticket]:
    w = q.window(window)
    t = q.tickets.get(w.current) if w.current else None
    if t is None or t.state not in states:
        zh = "或".join(TICKET_STATE_ZH[s] for s in states)
        raise Conflict(
            "no_current_ticket",
            f"{window}号窗口当前没有{zh}的号码",
            f"window {window} has no ticket in state {'/'.join(states)}",
        )
    return w, t


TICKET_STATE_ZH = {
    "waiting": "等候中",
    "called": "已叫号",
    "serving": "办理中",
    "done": "已办结",
    "no_show": "已过号",
    "transferred": "已转移",
    "cancelled": "已取消",
}

UNSTARTED_CHOICES = ("finish", "no_show", "recall")
"""What a clerk may do with a called ticket whose visitor never came to the window (``current_not_started``)."""


def _require_staff(cfg: Config, w: WindowStatus) -> None:
    """A call is made in a staff member's name (ratings, statistics, 电子监察): nobody signed in, no call."""
    if cfg.queue.require_sign_in and w.staff is None:
        raise Conflict(
            "not_signed_in",
            f"{w.number}号窗口未签到，请先刷工牌或输入工号签到",
            f"window {w.number}: nobody is signed in; sign in with your badge or staff number first",
        )


def _clear_current(q: HallQueue, cfg: Config, d: Decision, w: WindowStatus, now: datetime) -> WindowStatus:
    """Before the window calls again: end its current ticket, or refuse, by the configured policy.

    A ticket being served is finished (``call_next_finishes_current``). A ticket that was
    called and never started is the visitor who may not have come: recording it as done
    would put a service nobody received into the statistics and ask the pad for a rating
    nobody can give, so by default (``call_next_unstarted = "ask"``) the clerk must say
    which it was (finish, no-show, recall) first.
    """
    if w.current is None:
        return w
    cur = q.tickets.get(w.current)
    if cur is None or cur.state not in ("called", "serving"):
        return dataclasses.replace(w, current=None)
    if not cfg.queue.call_next_finishes_current:
        raise Conflict(
            "window_busy",
            f"{w.number}号窗口的{cur.number}尚未办结，请先办结",
            f"window {w.number} still has a ticket; finish it first",
        )
    if cur.state == "called":
        policy = cfg.queue.call_next_unstarted
        if policy == "ask":
            raise Conflict(
                "current_not_started",
                f"{cur.number}已叫号但未开始办理：请选择办结、未到或重呼",
                f"{cur.number} was called but service never started: choose finish, no-show or recall",
                extra={"ticket": cur.number, "choices": list(UNSTARTED_CHOICES)},
            )
        if policy == "no_show":
            return _mark_no_show(d, w, cur, now)
    return _finish_current(q, cfg, d, w, now)


def recall(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    window_config(cfg, window)
    _require_staff(cfg, q.window(window))
    w, t = _current(q, window, ("called",))
    gap = cfg.queue.recall_min_gap_s
    if t.called_at is not None and (since := (now - t.called_at).total_seconds()) < gap:
        # The screen is still saying the last call (a chime and the sentence, twice): a recall
        # now would only queue the same words behind it.
        raise Conflict(
            "recall_too_soon",
            f"{t.number}刚刚呼叫过，请{max(1, round(gap - since))}秒后再重呼",
            f"{t.number} was called {round(since)} s ago; recall again in {max(1, round(gap - since))} s",
        )
    if t.recalls >= cfg.queue.max_recalls:
        # Out of recalls: the visitor did not come. Mark no-show rather than call forever.
        return no_show(q, cfg, window, now)
    d = Decision(at=now)
    d.windows.append(_call(cfg, d, w, t, now, recall=t.recalls + 1))
    return d


def start(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    window_config(cfg, window)
    w, t = _current(q, window, ("called",))
    d = Decision(at=now)
    serving = dataclasses.replace(t, state="serving", serving_at=now, staff=w.staff)
    d.tickets.append(serving)
    d.windows.append(w)
    d.log.append(LogRow("serving", t.id, window, {"number": t.number}))
    d.events.append(ev.TicketServing(at=now, ticket_id=t.id, number=t.number, window=window, staff=w.staff))
    d.result = serving
    return d


def finish(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    window_config(cfg, window)
    w, _ = _current(q, window, ("called", "serving"))
    d = Decision(at=now)
    d.windows.append(_finish_current(q, cfg, d, w, now))
    d.result = d.tickets[-1]
    return d


def no_show(q: HallQueue, cfg: Config, window: int, now: datetime) -> Decision:
    window_config(cfg, window)
    w, t = _current(q, window, ("called",))
    d = Decision(at=now)
    d.windows.append(_mark_no_show(d, w, t, now))
    d.result = d.tickets[-1]
    return d


def _mark_no_show(d: Decision, w: WindowStatus, t: Ticket, now: datetime) -> WindowStatus:
    gone = dataclasses.replace(t, state="no_show", finished_at=now, end_reason="no_show")
    d.tickets.append(gone)
    d.log.append(LogRow("no_show", t.id, w.number, {"number": t.number, "recalls": t.recalls}))
    d.events.append(
        ev.TicketNoShow(
            at=now, ticket_id=t.id, number=t.number, category=t.category, window=w.number, recalls=t.recalls
        )
    )
    return dataclasses.replace(w, current=None)


def transfer(
    q: HallQueue,
    cfg: Config,
    window: int,
    to_category: str | None,
    to_window: int | None,
    now: datetime,
    holder: Holder | None = None,
    note: str | None = None,
) -> Decision:
    """End the current ticket as transferred and issue its follow-up; ``note`` (the clerk's words for
    the next window: what is done, what is missing) and the origin window travel on the follow-up."""
    window_config(cfg, window)
    w, t = _current(q, window, ("called", "serving"))
    if to_category is None and to_window is None:
        raise Refused("bad_transfer", "请选择要转移到的业务类别或窗口", "name a category or a window to transfer to")
    if to_window is not None:
        target = window_config(cfg, to_window)
        if to_window == window:
            raise Refused("bad_transfer", "不能转移到本窗口", "cannot transfer a ticket to its own window")
        to_category = to_category or (t.category if t.category in target.categories else target.categories[0])
    assert to_category is not None
    cat = category_config(cfg, to_category)
    d = Decision(at=now)
    old = dataclasses.replace(t, state="transferred", finished_at=now, end_reason="transferred")
    d.tickets.append(old)
    new = new_ticket(
        q,
        cfg,
        d,
        cat,
        now,
        sort_at=t.sort_at,
        priority=t.priority,
        priority_reason=t.priority_reason,
        channel="transfer",
        kiosk=t.kiosk,
        holder_masked=t.holder_masked,
        id_hash=t.id_hash,
        origin_id=t.id,
        target_window=to_window,
        appointment_slot=t.appointment_slot,
        from_window=window,
        transfer_note=note or None,
    )
    d.tickets.append(new)
    if holder is not None:
        d.holders.append((new.id, holder))
    d.windows.append(dataclasses.replace(w, current=None))
    d.log.append(
        LogRow(
            "transferred",
            t.id,
            window,
            {
                "number": t.number,
                "new_ticket": new.id,
                "to_category": cat.prefix,
                "to_window": to_window,
                "note": note or None,
            },
        )
    )
    d.events.append(
        ev.TicketTransferred(
            at=now,
            ticket_id=t.id,
            number=t.number,
            new_ticket_id=new.id,
            new_number=new.number,
            from_window=window,
            to_category=cat.prefix,
            to_window=to_window,
        )
    )
    d.result = new
    return d


def pause(q: HallQueue, cfg: Config, window: int, now: datetime, paused: bool) -> Decision:
    window_config(cfg, window)
    w = q.window(window)
    d = Decision(at=now)
    d.windows.append(dataclasses.replace(w, paused=paused))
    d.log.append(LogRow("paused" if paused else "resumed", None, window, {}))
    d.result = None
    return d


def sign_in(q: HallQueue, cfg: Config, window: int, staff: str | None, now: datetime) -> Decision:
    window_config(cfg, window)
    w = q.window(window)
    d = Decision(at=now)
    d.windows.append(dataclasses.replace(w, staff=staff))
    if staff is not None:
        s = cfg.staff_by_id(staff)
        d.log.append(LogRow("signed_in", None, window, {"staff": staff}))
        d.events.append(ev.StaffSignedIn(at=now, window=window, staff=staff, staff_name=s.name if s else staff))
    elif w.staff is not None:
        d.log.append(LogRow("signed_out", None, window, {"staff": w.staff}))
        d.events.append(ev.StaffSignedOut(at=now, window=window, staff=w.staff))
    return d


def cancel(q: HallQueue, cfg: Config, ticket_id: str, now: datetime, reason: str = "cancelled") -> Decision:
    t = q.tickets.get(ticket_id)
    if t is None:
        raise NotFound("unknown_ticket", f"没有进行中的号票{ticket_id}", f"no active ticket {ticket_id}")
    if t.state != "waiting":
        raise Conflict(
            "ticket_not_waiting",
            f"{t.number}{TICKET_STATE_ZH.get(t.state, t.state)}，只能取消等候中的号票",
            f"ticket {t.number} is {t.state}; only waiting tickets can be cancelled",
        )
    d = Decision(at=now)
    d.tickets.append(dataclasses.replace(t, state="cancelled", finished_at=now, end_reason=reason))
    d.log.append(LogRow("cancelled", t.id, None, {"number": t.number, "reason": reason}))
    d.events.append(ev.TicketCancelled(at=now, ticket_id=t.id, number=t.number, category=t.category, reason=reason))
    d.result = d.tickets[-1]
    return d


def rollover(q: HallQueue, cfg: Config, now: datetime) -> Decision | None:
    """A new business day: close what is still open from earlier days. History stays."""
    day = business_day(now, cfg)
    if day == q.day:
        return None
    d = Decision(at=now)
    for t in q.tickets.values():
        if t.state in ACTIVE and t.day < day:
            d.tickets.append(dataclasses.replace(t, state="cancelled", finished_at=now, end_reason="day_closed"))
            d.log.append(LogRow("cancelled", t.id, t.window, {"number": t.number, "reason": "day_closed"}))
            d.events.append(
                ev.TicketCancelled(at=now, ticket_id=t.id, number=t.number, category=t.category, reason="day_closed")
            )
    for w in q.windows.values():
        if w.current is not None or w.priority_streak or w.last_finished:
            d.windows.append(dataclasses.replace(w, current=None, priority_streak=0, last_finished=None))
    d.log.append(LogRow("day_opened", None, None, {"day": day.isoformat()}))
    d.new_day = day
    d.result = day
    return d


def overdue(q: HallQueue, cfg: Config, now: datetime) -> list[tuple[str, Ticket]]:
    """Tickets past their supervision limits (电子监察): waiting too long, service too long."""
    out: list[tuple[str, Ticket]] = []
    for t in q.tickets.values():
        cat = cfg.category_by_prefix(t.category)
        if cat is None:
            continue
        wait_limit = cfg.supervision.wait_alert_minutes or 2 * cat.target_wait_minutes
        waited = waiting_time(t, now) if t.state == "waiting" else None
        if waited is not None and waited > timedelta(minutes=wait_limit):
            out.append(("wait_exceeded", t))
        started = t.serving_at or t.called_at
        if t.state == "serving" and started and now - started > timedelta(minutes=cat.service_minutes):
            out.append(("service_overrun", t))
    return out
