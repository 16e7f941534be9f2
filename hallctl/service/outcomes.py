"""What the queue service hands back: an issue's outcome, a window's queue, a swiped card's offer."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from hallctl import events as ev
from hallctl.engine import Holder, Ticket


@dataclasses.dataclass
class CardOffer:
    """A swiped card waiting for the visitor to pick a category at a multi-category kiosk."""

    offer: str
    kiosk: str
    holder: Holder
    expires: datetime


@dataclasses.dataclass(frozen=True)
class WindowQueue:
    """A window's view of the queue (``GET /windows/{n}/queue``)."""

    state: ev.WindowState
    waiting: list[Ticket]
    served_today: int
    history: list[Ticket]
    current: Ticket | None = None  # the ticket called or served at the window now


@dataclasses.dataclass
class IssueOutcome:
    ticket: Ticket
    waiting_ahead: int
    qr: str
    replayed: bool = False
