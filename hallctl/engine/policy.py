"""Policy the engine applies: the business day, opening hours, age, announcements, ordering."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from hallctl import events as ev
from hallctl.config import CategoryConfig, Config, WindowConfig
from hallctl.engine import calendar
from hallctl.engine.model import Holder, Ticket, WindowStatus
from hallctl.engine.queue import HallQueue

# ---- time -------------------------------------------------------------------


def business_day(now: datetime, cfg: Config) -> date:
    local = now.astimezone(cfg.hall.tz)
    return (local - timedelta(hours=cfg.hall.day_reset_hour)).date()


def is_open(cat: CategoryConfig, now: datetime, cfg: Config) -> bool:
    """Open now: the category's hours on this day of the hall's calendar (holidays, 调休, overrides)."""
    return calendar.is_open(cfg, cat, now)


def age_on(birth: date, today: date) -> int:
    years = today.year - birth.year
    # A 29 February birthday is reached on 1 March in common years.
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def elderly(holder: Holder | None, now: datetime, cfg: Config) -> bool:
    """Whether this card holder gets the green channel for age: the one rule for the kiosk and the ticket.

    Age in full years on the hall's local date is at least ``queue.elderly_age``, and
    ``queue.auto_elderly_priority`` is on. The kiosk's 绿色通道 badge (``CardRead.elderly``)
    and the issued ticket's priority both come from here, so they cannot disagree.
    """
    if not cfg.queue.auto_elderly_priority or holder is None or holder.birth is None:
        return False
    today = now.astimezone(cfg.hall.tz).date()
    if not birth_validated(holder, today):
        return False
    return age_on(holder.birth, today) >= cfg.queue.elderly_age


EARLIEST_BIRTH = date(1900, 1, 1)
# Card types whose number carries the birth date in digits 7-14 (resident card, 港澳台 residence permit).
BIRTH_IN_NUMBER = frozenset({"resident", "hk_mo_tw_residence"})


def birth_validated(holder: Holder, today: date) -> bool:
    """The holder's birth date is possible and, where the number carries one, agrees with it.

    Only such a birth date may grant priority; an expired card grants nothing by itself
    (its ``valid_to`` is never looked at here). The device side refuses disagreeing
    cards before they get here; this keeps the engine's rule safe on its own.
    """
    birth = holder.birth
    if birth is None or birth < EARLIEST_BIRTH or birth > today:
        return False
    if holder.card_type in BIRTH_IN_NUMBER:
        digits = holder.id_number[6:14]
        if len(holder.id_number) != 18 or not (digits.isascii() and digits.isdigit()):
            return False
        return digits == birth.strftime("%Y%m%d")
    return True


def card_expired(holder: Holder, now: datetime, cfg: Config) -> bool:
    """The card's validity ended before the hall's local date (accepted for renewals, but flagged)."""
    return holder.valid_to is not None and holder.valid_to < now.astimezone(cfg.hall.tz).date()


def announcement(number: str, window: int) -> tuple[str, str]:
    return (f"请{number}号到{window}号窗口办理", f"Number {number}, please go to window {window}")


# ---- the paper ticket -----------------------------------------------------------

PRIORITY_LABELS = {"green": "绿色通道", "appointment": "预约"}
TICKET_FOOTER = "请留意叫号，过号请到导办台"


def print_job(cfg: Config, t: Ticket, waiting_ahead: int, qr: str) -> ev.PrintJob:
    """The slip for ``t``: what the kiosk was answered (count ahead, QR token), laid out once."""
    cat = cfg.category_by_prefix(t.category)
    windows = [str(w.number) for w in cfg.window if t.category in w.categories]
    return ev.PrintJob(
        ticket_id=t.id,
        hall_name=cfg.hall.name,
        category_name=cat.name if cat else t.category,
        number=t.number,
        waiting_ahead=waiting_ahead,
        issued_at=t.issued_at.astimezone(cfg.hall.tz),
        qr=qr,
        holder_masked=t.holder_masked if cfg.privacy.print_masked_name else None,
        window_hint=f"请到{'、'.join(windows[:6])}号窗口办理" if windows else None,
        priority_label=PRIORITY_LABELS.get(t.priority),
        # The hall's notice (``[hall] notice``) above the fixed line: what to bring, the green channel.
        footer="\n".join(line for line in (cfg.hall.notice, TICKET_FOOTER) if line),
    )


# ---- ordering policy ----------------------------------------------------------


def choose_next(
    waiting: Iterable[Ticket], window: WindowConfig, status: WindowStatus, now: datetime, cfg: Config
) -> Ticket | None:
    """Pick the ticket this window calls next (module docstring has the rules)."""
    cats = window.categories
    candidates = [
        t
        for t in waiting
        if t.state == "waiting"
        and (t.target_window == window.number or (t.target_window is None and t.category in cats))
    ]
    if not candidates:
        return None
    directed = [t for t in candidates if t.target_window == window.number]
    if directed:
        return min(directed, key=lambda t: (t.sort_at, t.seq))
    limit = timedelta(minutes=cfg.queue.starvation_minutes)
    overdue = [t for t in candidates if now - t.sort_at >= limit]
    if overdue:
        return min(overdue, key=lambda t: (t.sort_at, t.seq))
    for cat in cats:
        in_cat = [t for t in candidates if t.category == cat]
        if not in_cat:
            continue
        if status.priority_streak >= cfg.queue.priority_streak_cap:
            normal = [t for t in in_cat if t.priority == "normal"]
            if normal:
                return min(normal, key=lambda t: (t.sort_at, t.seq))
        return min(in_cat, key=Ticket.order_key)
    return None


def waiting_ahead(q: HallQueue, ticket: Ticket) -> int:
    return q.ahead_of(ticket)
