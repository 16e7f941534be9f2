"""The queue engine: pure decisions, no I/O.

Every public function takes the current :class:`HallQueue`, the config and the
time, and returns a :class:`Decision`: the rows to write (in one transaction),
the event-log rows, and the events to publish afterwards. Nothing here mutates
the state; the service applies a decision to memory only after the store has
committed it, so a failed write leaves memory exactly as the disk is.

Ordering policy (docs/queue-policy.md has the prose):

1. Tickets transferred *to this window* go first, oldest first.
2. Any ticket of the window's categories that has waited longer than
   ``queue.starvation_minutes`` goes next, oldest first (fairness across
   categories: a busy first category cannot starve the others).
3. Otherwise the first category, in the window's preference order, that has
   anyone waiting; inside it tickets sort by (priority class, appointment slot or
   issue time, issue time), with classes green < appointment < normal.
4. Anti-starvation inside a category: after ``queue.priority_streak_cap``
   priority calls in a row at this window, the oldest normal ticket goes next.
"""

from hallctl.engine.appointments import (
    book,
    cancel_appointment,
    check_in,
    find_for_card,
    reschedule,
    slot_counts,
)
from hallctl.engine.decisions import (
    IssueRequest,
    Signer,
    call_next,
    call_ticket,
    called_event,
    cancel,
    finish,
    for_window,
    issue,
    kiosk_config,
    no_show,
    overdue,
    pause,
    print_result,
    recall,
    reprint,
    rollover,
    sign_in,
    start,
    transfer,
)
from hallctl.engine.evaluations import evaluate, request_evaluation
from hallctl.engine.model import (
    ACTIVE,
    LEVEL_LABELS,
    PRIORITY_RANK,
    TERMINAL,
    UNRATED_LABEL,
    Appointment,
    Decision,
    Evaluation,
    Holder,
    LogRow,
    Priority,
    Ticket,
    WindowStatus,
    is_bad_rating,
    waiting_time,
)
from hallctl.engine.policy import (
    age_on,
    announcement,
    birth_validated,
    business_day,
    card_expired,
    choose_next,
    elderly,
    is_open,
    print_job,
    waiting_ahead,
)
from hallctl.engine.queue import CategoryDay, HallQueue, TicketTable

__all__ = [
    "ACTIVE",
    "LEVEL_LABELS",
    "PRIORITY_RANK",
    "TERMINAL",
    "UNRATED_LABEL",
    "Appointment",
    "CategoryDay",
    "Decision",
    "Evaluation",
    "HallQueue",
    "Holder",
    "IssueRequest",
    "LogRow",
    "Priority",
    "Signer",
    "Ticket",
    "TicketTable",
    "WindowStatus",
    "age_on",
    "announcement",
    "birth_validated",
    "book",
    "business_day",
    "call_next",
    "call_ticket",
    "called_event",
    "cancel",
    "cancel_appointment",
    "card_expired",
    "check_in",
    "choose_next",
    "elderly",
    "evaluate",
    "find_for_card",
    "finish",
    "for_window",
    "is_bad_rating",
    "is_open",
    "issue",
    "kiosk_config",
    "no_show",
    "overdue",
    "pause",
    "print_job",
    "print_result",
    "recall",
    "reprint",
    "request_evaluation",
    "reschedule",
    "rollover",
    "sign_in",
    "slot_counts",
    "start",
    "transfer",
    "waiting_ahead",
    "waiting_time",
]
