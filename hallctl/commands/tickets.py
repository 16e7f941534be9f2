"""Ticket commands: issue, cancel, reprint, rate, QR lookup."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from hallctl import engine
from hallctl.auth import Principal
from hallctl.commands.args import IssueArgs, QrArgs, ReprintArgs, TicketArgs, TicketEvaluateArgs
from hallctl.commands.table import INTERNAL, Call, HttpRoute, Transport, channel_for, command
from hallctl.context import HallContext
from hallctl.errors import Conflict, Forbidden, Refused
from hallctl.privacy import mask_id, mask_name
from hallctl.service import HallService, IssueOutcome
from hallctl.views import holder_view, ticket_view


def ticket_answer(svc: HallService, t: Any) -> dict[str, Any] | None:
    return ticket_view(t) if t is not None else None


def _render(o: IssueOutcome) -> tuple[int, dict[str, Any]]:
    # What a retry's answer is rebuilt from (HallService._replay: the ticket as it is then, with
    # the count and QR the first answer gave), not a second copy of the whole answer (issue 12).
    return 201, {"waiting_ahead": o.waiting_ahead, "qr": o.qr}


def issue_ticket(
    svc: HallService,
    a: IssueArgs,
    p: Principal,
    idempotency_key: str | None = None,
    transport: Transport = INTERNAL,
) -> Awaitable[IssueOutcome]:
    """Issue for every transport; with ``idempotency_key`` a retry gets the first ticket back.

    Checks, then returns the service's coroutine for the caller to await: no frame of its own
    that every resume of the request would pass through.
    """
    if a.priority == "green" and p.role not in ("guide", "window", "admin"):
        raise Refused(
            "priority_not_allowed",
            "绿色通道需由导办或窗口人员办理",
            "only a guide or clerk can grant the green channel",
        )
    if a.priority_reason is not None and a.priority_reason not in {r.id for r in svc.cfg.guide.green_reasons}:
        raise Refused(
            "unknown_green_reason",
            "未知的绿色通道类别",
            f"unknown green-channel reason {a.priority_reason!r} (see [guide] green_reasons)",
        )

    if a.offer:
        # Only the token of the kiosk where the card was swiped (or admin) may redeem its offer.
        return svc.issue_from_offer(
            a.offer,
            a.category,
            may_redeem=p.acts_for_kiosk,
            idempotency_key=idempotency_key,
            render=_render if idempotency_key is not None else None,
        )

    channel = channel_for(p, transport)
    kiosk = a.kiosk
    if kiosk is not None:
        # The ticket prints at the kiosk it names: a kiosk token only at its own kiosks.
        engine.kiosk_config(svc.cfg, kiosk)
        if p.role == "kiosk" and not p.acts_for_kiosk(kiosk):
            raise Forbidden("wrong_kiosk", "此令牌不能为该取号机取号", "this token may not act for that kiosk")
    elif channel == "guide":
        kiosk = svc.cfg.guide.kiosk  # the desk's own printer ([guide] kiosk), if it has one
    return svc.issue(
        a.category,
        channel=channel,
        kiosk=kiosk,
        priority=a.priority,
        priority_reason=a.priority_reason,
        idempotency_key=idempotency_key,
        render=_render if idempotency_key is not None else None,
    )


def issued_view(svc: HallService, out: IssueOutcome) -> dict[str, Any]:
    # A replayed answer counts again (the queue moved since); a fresh one uses the decision's count.
    ahead = None if out.replayed else out.waiting_ahead
    return ticket_view(
        out.ticket,
        waiting_ahead=out.waiting_ahead,
        estimated_wait_s=svc.estimated_wait_s(out.ticket, ahead),
        qr=out.qr,
    )


def appointment_view(a: Any) -> dict[str, Any]:
    return {
        "code": a.code,
        "category": a.category,
        "slot_start": a.slot_start.isoformat(),
        "slot_end": a.slot_end.isoformat(),
        "state": a.state,
        "holder": a.holder_masked,  # masked (张*) or null: never the full name
        "ticket_id": a.ticket_id,
    }


def masked_holder(view: dict[str, Any] | None) -> dict[str, Any] | None:
    """The holder as a transport without personal data carries it: masked name and ID number, nothing else."""
    if view is None:
        return None
    return {
        "name": mask_name(view["name"]) if view.get("name") else None,
        "id_number": mask_id(view["id_number"]) if view.get("id_number") else None,
    }


# ---- tickets ----------------------------------------------------------------------------------


@command(
    "ticket.issue",
    IssueArgs,
    ("kiosk", "guide", "window"),
    http=HttpRoute(
        "POST",
        "/tickets",
        201,
        body="ticket",
        idempotency=True,
        errors={
            403: ("wrong_kiosk",),
            404: ("unknown_category", "unknown_kiosk", "unknown_ticket"),
            422: (
                "id_limit_reached",
                "priority_not_allowed",
                "unknown_green_reason",
                "bad_idempotency_key",
                "category_closed",
                "category_not_offered",
                "offer_expired",
            ),
        },
    ),
    mqtt="ticket/issue",
)
async def _issue(ctx: HallContext, a: IssueArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    p = c.principal
    key = c.idempotency_key
    if key is not None and not (1 <= len(key) <= 128):
        raise Refused("bad_idempotency_key", "请求标识须为1至128个字符", "Idempotency-Key must be 1..128 characters")
    # The key is scoped to the token that sent it; it covers swipe (offer) issues too, so a kiosk
    # that retries after a lost answer gets its ticket back instead of offer_expired.
    scoped = f"{p.token_id}:{key}" if key is not None else None
    out = await issue_ticket(svc, a, p, idempotency_key=scoped, transport=c.transport)
    c.replayed = out.replayed
    return {"ticket": issued_view(svc, out)}


@command(
    "ticket.cancel",
    TicketArgs,
    ("guide", "kiosk"),
    http=HttpRoute(
        "POST",
        "/tickets/{ticket_id}/cancel",
        body="ticket",
        errors={404: ("unknown_ticket",), 409: ("ticket_not_waiting",)},
    ),
    mqtt="ticket/{ticket_id}/cancel",
)
async def _cancel(ctx: HallContext, a: TicketArgs, c: Call) -> dict[str, Any]:
    return {"ticket": ticket_view(await ctx.service.cancel(a.ticket_id))}


@command(
    "ticket.reprint",
    ReprintArgs,
    ("guide", "kiosk", "window"),  # window: the terminal shows print_failed tickets with a reprint button
    http=HttpRoute(
        "POST", "/tickets/{ticket_id}/reprint", 202, errors={404: ("unknown_ticket",), 422: ("no_printer",)}
    ),
    mqtt="ticket/{ticket_id}/reprint",
)
async def _reprint(ctx: HallContext, a: ReprintArgs, c: Call) -> dict[str, Any]:
    t = await ctx.service.reprint(a.ticket_id, a.kiosk)
    return {"ticket": ticket_view(t), "queued": True}


# Ratings come only from the visitor's side (the pad device, the pad page with a pad token).
VISITOR_ONLY = (
    "rating_from_visitor_only",
    "评价只能由办事群众在评价器上作出",
    "a rating comes only from the visitor, on the evaluation pad",
)


@command(
    "ticket.evaluate",
    TicketEvaluateArgs,
    ("pad",),
    http=HttpRoute(
        "POST",
        "/tickets/{ticket_id}/evaluation",
        201,
        errors={
            403: ("rating_from_visitor_only", "wrong_window"),
            404: ("unknown_ticket", "unknown_window"),
            409: ("ticket_not_served", "already_evaluated", "no_ticket_to_evaluate"),
            422: ("bad_level", "ticket_not_at_window"),
        },
    ),
    mqtt="ticket/{ticket_id}/evaluate",
    refusal=VISITOR_ONLY,
)
async def _evaluate_ticket(ctx: HallContext, a: TicketEvaluateArgs, c: Call) -> dict[str, Any]:
    t = await ctx.service.ticket(a.ticket_id)
    if t.window is None:
        raise Conflict("ticket_not_served", f"{t.number}还没有办理，不能评价", f"ticket {t.number} has not been served")
    c.principal.require_window(t.window)  # the pad of the window that served it
    return await rate(ctx, t.window, a.level, t.id, a.reasons)


@command(
    "ticket.by_qr",
    QrArgs,
    ("window",),
    http=HttpRoute(
        "GET",
        "/tickets/by-qr/{code}",
        errors={403: ("wrong_window",), 404: ("unknown_ticket",), 422: ("bad_qr_token", "expired_qr_token")},
    ),
    mqtt="ticket/by_qr",
    personal={"holder": masked_holder},
)
async def _by_qr(ctx: HallContext, a: QrArgs, c: Call) -> dict[str, Any]:
    svc = ctx.service
    p = c.principal
    t, holder = await svc.ticket_by_qr(a.code)
    if p.role != "admin":
        # Least privilege: a clerk sees the visitors of their own windows' queues, not the whole hall's.
        mine = {cat for n in p.windows if (w := svc.cfg.window_by_number(n)) for cat in w.categories}
        if not (t.window in p.windows or t.target_window in p.windows or t.category in mine):
            raise Forbidden(
                "wrong_window", f"{t.number}不属于本窗口", f"ticket {t.number} is not for this token's windows"
            )
    return {"ticket": ticket_view(t), "holder": holder_view(holder) if holder else None}


async def rate(
    ctx: HallContext, window: int, level: int, ticket_id: str | None, reasons: tuple[str, ...]
) -> dict[str, Any]:
    e = await ctx.service.evaluate(window, level, "pad_screen", ticket_id=ticket_id, reasons=reasons)
    return {
        "evaluation": {
            "ticket_id": e.ticket_id,
            "level": e.level,
            "window": e.window,
            "staff": e.staff,
            "at": e.at.isoformat(),
        }
    }
