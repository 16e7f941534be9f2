"""The service's kiosk actions: a card swiped (issue at once or offer the categories), an offer
redeemed, and what a kiosk's screen is told.

A mixin of :class:`hallctl.service.HallService` (its methods take the service as ``self``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hallctl import engine
from hallctl import events as ev
from hallctl.engine import Decision, HallQueue, Holder, Ticket
from hallctl.errors import Forbidden, HallctlError, NotFound, Refused
from hallctl.privacy import mask_id, mask_name
from hallctl.service.appointments import AppointmentActions
from hallctl.service.outcomes import CardOffer, IssueOutcome

if TYPE_CHECKING:
    from hallctl.bus import Bus

log = logging.getLogger("hallctl.service")


class CardActions(AppointmentActions):
    # What this mixin uses of the service (hallctl.service.HallService provides it).
    if TYPE_CHECKING:
        bus: Bus
        _lock: asyncio.Lock
        _offers: dict[str, CardOffer]

        async def _commit_locked(self, d: Decision) -> None: ...

        async def _idempotent(
            self, idempotency_key: str | None, issue: Callable[[str | None], Awaitable[IssueOutcome]]
        ) -> IssueOutcome: ...

        async def _issue(
            self,
            category: str,
            channel: str,
            kiosk: str | None,
            holder: Holder | None,
            priority: str | None,
            priority_reason: str | None,
            idempotency_key: str | None,
            render: Callable[[IssueOutcome], tuple[int, dict[str, Any]]] | None,
        ) -> IssueOutcome: ...

        def _publish(self, d: Decision, *, coalesce: bool = False) -> None: ...

        async def _ticket_of(self, decide: Callable[[HallQueue, datetime], Decision]) -> Ticket: ...

        async def ticket(self, ticket_id: str) -> Ticket: ...

    async def card_read(self, kiosk_id: str, holder: Holder, card_type: str = "resident") -> IssueOutcome | None:
        """A card swiped at a kiosk: issue at once (one category) or offer the categories."""
        kiosk = engine.kiosk_config(self.cfg, kiosk_id)
        now = self.clock()
        # De-duplication of repeated reads is the reader driver's (queue.card_dedupe_seconds).
        offer = secrets.token_urlsafe(12)
        self._offers = {k: o for k, o in self._offers.items() if o.expires > now}
        self._offers[offer] = CardOffer(
            offer, kiosk_id, holder, now + timedelta(seconds=self.cfg.queue.card_offer_seconds)
        )
        open_cats = tuple(
            c
            for c in kiosk.categories
            if (cat := self.cfg.category_by_prefix(c)) is not None and engine.is_open(cat, now, self.cfg)
        )
        self.bus.publish(
            ev.CardRead(
                at=now,
                kiosk=kiosk_id,
                holder=mask_name(holder.name),
                id_masked=mask_id(holder.id_number),
                card_type=card_type,
                elderly=engine.elderly(holder, now, self.cfg),
                offer=offer,
                categories=open_cats,
                card_expired=engine.card_expired(holder, now, self.cfg),
            )
        )
        booked = await self._check_in_card(kiosk_id, holder)
        if booked is not None:
            self._offers.pop(offer, None)  # the swipe was the check-in: no second ticket from it
            return booked
        if len(kiosk.categories) == 1:
            return await self.issue_from_offer(offer, kiosk.categories[0])
        return None

    async def _check_in_card(self, kiosk_id: str, holder: Holder) -> IssueOutcome | None:
        """The card that booked today's appointment checks it in at the swipe (no code to type).

        A refusal (too early, category closed) is told on the kiosk's screen, and the swipe
        goes on as an ordinary one: the visitor may still take a walk-in ticket.
        """
        try:
            code = self.code_for_card(holder.id_number)
        except NotFound:
            return None
        try:
            return await self.check_in(code, kiosk_id)
        except HallctlError as exc:
            self.kiosk_notice(kiosk_id, exc.code, exc.message, exc.message_en)
            return None

    async def issue_from_offer(
        self,
        offer: str,
        category: str,
        *,
        may_redeem: Callable[[str], bool] | None = None,
        idempotency_key: str | None = None,
        render: Callable[[IssueOutcome], tuple[int, dict[str, Any]]] | None = None,
    ) -> IssueOutcome:
        """Redeem a swipe's offer. With ``idempotency_key`` a retry gets the first ticket back.

        ``may_redeem(kiosk)`` says whether the caller acts for the kiosk where the card was
        swiped; otherwise 403 ``wrong_kiosk`` and the offer stays for that kiosk.
        """
        return await self._idempotent(
            idempotency_key, lambda key: self._redeem(offer, category, key, render, may_redeem)
        )

    async def _redeem(
        self,
        offer: str,
        category: str,
        idempotency_key: str | None,
        render: Callable[[IssueOutcome], tuple[int, dict[str, Any]]] | None,
        may_redeem: Callable[[str], bool] | None = None,
    ) -> IssueOutcome:
        # Taken before anything is awaited: a second redemption running meanwhile finds no offer.
        o = self._offers.pop(offer, None)
        if o is None or o.expires < self.clock():
            raise Refused("offer_expired", "请重新刷身份证", "please swipe your ID card again")
        if may_redeem is not None and not may_redeem(o.kiosk):
            self._offers[offer] = o  # still the visitor's, at their kiosk
            raise Forbidden("wrong_kiosk", "此令牌不能为该取号机取号", "this token may not act for that kiosk")
        kiosk = self.cfg.kiosk_by_id(o.kiosk)
        if kiosk is not None and category not in kiosk.categories:
            self._offers[offer] = o
            raise Refused(
                "category_not_offered", f"本机不办理{category}类业务", f"this kiosk does not issue category {category}"
            )
        try:
            return await self._issue(category, "kiosk", o.kiosk, o.holder, None, None, idempotency_key, render)
        except HallctlError as exc:  # refused by policy, or the store could not take it: tell the screen
            if o.expires >= self.clock():
                self._offers[offer] = o  # the visitor may pick another category (or try again)
            self.bus.publish(
                ev.KioskNotice(
                    at=self.clock(),
                    kiosk=o.kiosk,
                    code=exc.code,
                    message=exc.message,
                    message_en=exc.message_en,
                )
            )
            raise

    async def reprint(self, ticket_id: str, kiosk: str | None) -> Ticket:
        """Print a ticket again: an engine decision (logged), whose print job carries a fresh QR token."""
        t = await self.ticket(ticket_id)  # memory first, the store for older tickets
        return await self._ticket_of(lambda q, now: engine.reprint(q, self.cfg, t, kiosk, now, self._sign))

    async def print_result(self, ticket_id: str, kiosk: str, printed: bool, reason: str | None = None) -> None:
        """Record the kiosk printer's outcome: a failed print marks the ticket ``print_failed``
        (event log ``print_failed``), a later print that works clears it (``print_recovered``)."""
        async with self._lock:
            t = self._q.tickets.get(ticket_id) or await self._store.ticket(ticket_id)
            if t is None:
                log.warning("print result for unknown ticket %s not recorded", ticket_id)
                return
            d = engine.print_result(self._q, t, kiosk, printed, reason, self.clock())
            if d is None:
                return
            await self._commit_locked(d)
            self._q.apply(d)
        self._publish(d)

    def kiosk_notice(
        self,
        kiosk: str,
        code: str,
        message: str,
        message_en: str,
        *,
        ticket_id: str | None = None,
        number: str | None = None,
    ) -> None:
        self.bus.publish(
            ev.KioskNotice(
                at=self.clock(),
                kiosk=kiosk,
                code=code,
                message=message,
                message_en=message_en,
                ticket_id=ticket_id,
                number=number,
            )
        )
