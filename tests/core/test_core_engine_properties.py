"""Property tests: random command sequences against the pure engine, checked by a reference policy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hallctl.engine import Ticket
from hallctl.errors import HallctlError
from tests.core.core_harness import EngineHall
from tests.core.core_helpers import T0, make_config

CAP = 2
STARVE_MIN = 30
WINDOWS = {1: ("A",), 2: ("A", "C"), 3: ("B", "A"), 4: ("C", "B")}
CFG = make_config(
    queue={
        "priority_streak_cap": CAP,
        "starvation_minutes": STARVE_MIN,
        "max_recalls": 1,
        "per_id_daily_limit": 100,
        "appointment_early_minutes": 30,
        "appointment_late_minutes": 15,
    },
    window=[{"number": n, "categories": list(c)} for n, c in WINDOWS.items()],
)
RANK = {"green": 0, "appointment": 1, "normal": 2}


def reference_pick(waiting: Iterable[Ticket], window: int, streak: int, now: datetime) -> Ticket | None:
    """The documented ordering policy, written from docs/queue-policy.md and the engine docstring, not the code."""
    cats = WINDOWS[window]
    waiting = [t for t in waiting if t.state == "waiting"]
    directed = [t for t in waiting if t.target_window == window]
    if directed:
        return sorted(directed, key=lambda t: (t.sort_at, t.seq))[0]
    mine = [t for t in waiting if t.target_window is None and t.category in cats]
    starving = [t for t in mine if (now - t.sort_at) >= timedelta(minutes=STARVE_MIN)]
    if starving:
        return sorted(starving, key=lambda t: (t.sort_at, t.seq))[0]
    for cat in cats:
        here = [t for t in mine if t.category == cat]
        if not here:
            continue
        normals = [t for t in here if t.priority == "normal"]
        if streak >= CAP and normals:
            return sorted(normals, key=lambda t: (t.sort_at, t.seq))[0]

        def key(t: Ticket) -> tuple[int, datetime, datetime, int]:
            when = t.appointment_slot if t.priority == "appointment" and t.appointment_slot else t.sort_at
            return (RANK[t.priority], when, t.sort_at, t.seq)

        return sorted(here, key=key)[0]
    return None


class HallMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = EngineHall(CFG, T0)
        self.issued: set[tuple[date, str]] = set()
        self.ids: set[str] = set()
        self.streak = dict.fromkeys(WINDOWS, 0)
        self.codes = 0

    # bookkeeping shared by every rule that creates tickets
    def _record_new(self, tickets: Iterable[Ticket]) -> None:
        for t in tickets:
            if t.id in self.ids:
                continue
            key = (t.day, t.number)
            assert key not in self.issued, f"number {t.number} issued twice on {t.day}"
            assert t.day == self.h.q.day
            self.issued.add(key)
            self.ids.add(t.id)

    def _run(self, fn: Any, *args: Any) -> Any:
        before = set(self.h.q.tickets)
        try:
            result = fn(*args)
        except HallctlError:
            assert set(self.h.q.tickets) == before
            return None
        self._record_new(t for d in self.h.decisions[-1:] for t in d.tickets)
        return result

    @rule(batch=st.lists(st.tuples(st.sampled_from("ABC"), st.booleans()), min_size=1, max_size=6))
    def issue(self, batch: list[tuple[str, bool]]) -> None:
        for category, green in batch:
            self._run(lambda c=category, g=green: self.h.issue(c, priority="green" if g else None))

    @rule(category=st.sampled_from("ABC"), offset=st.integers(-10, 25))
    def appointment(self, category: str, offset: int) -> None:
        self.codes += 1
        code = f"P{self.codes}"
        self.h.book(code, category, self.h.now + timedelta(minutes=offset))
        t = self._run(self.h.check_in, code)
        assert t is not None and t.priority == "appointment"

    @rule(window=st.sampled_from(sorted(WINDOWS)), times=st.integers(2, 5))
    def call_round(self, window: int, times: int) -> None:
        for _ in range(times):
            self.call_next(window)

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def call_next(self, window: int) -> None:
        w = self.h.q.window(window)
        expected = None if w.paused else reference_pick(self.h.q.waiting(), window, self.streak[window], self.h.now)
        t = self._run(self.h.call_next, window)
        if w.paused:
            assert t is None
            return
        assert (t.id if t else None) == (expected.id if expected else None), "call differs from the policy"
        if t is not None:
            self.streak[window] = self.streak[window] + 1 if t.priority != "normal" else 0

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def finish(self, window: int) -> None:
        self._run(self.h.finish, window)

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def start(self, window: int) -> None:
        self._run(self.h.start, window)

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def recall(self, window: int) -> None:
        self._run(self.h.recall, window)

    @rule(window=st.sampled_from(sorted(WINDOWS)))
    def no_show(self, window: int) -> None:
        self._run(self.h.no_show, window)

    @rule(
        window=st.sampled_from(sorted(WINDOWS)),
        to_category=st.sampled_from([None, "A", "B", "C"]),
        to_window=st.sampled_from([None, *sorted(WINDOWS)]),
    )
    def transfer(self, window: int, to_category: str | None, to_window: int | None) -> None:
        cur = self.h.q.window(window).current
        old = self.h.q.tickets.get(cur) if cur else None
        new = self._run(self.h.transfer, window, to_category, to_window)
        if isinstance(new, Ticket):
            assert old is not None and new.sort_at == old.sort_at and new.origin_id == old.id

    @rule(window=st.sampled_from(sorted(WINDOWS)), paused=st.booleans())
    def pause(self, window: int, paused: bool) -> None:
        self._run(self.h.pause, window, paused)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        waiting = sorted(t.id for t in self.h.q.waiting())
        if waiting:
            self._run(self.h.cancel, data.draw(st.sampled_from(waiting)))

    @rule(minutes=st.sampled_from([0, 1, 2, 5, 10, 15, 30]))
    def advance(self, minutes: int) -> None:
        self.h.advance(minutes=minutes)
        self._rollover()

    @rule()
    def next_day(self) -> None:
        self.h.advance(days=1)
        self._rollover()

    def _rollover(self) -> None:
        if self.h.rollover() is not None:
            self.streak = dict.fromkeys(WINDOWS, 0)

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def one_window_per_ticket(self) -> None:
        current = [w.current for w in self.h.q.windows.values() if w.current is not None]
        active = [
            w.current
            for w in self.h.q.windows.values()
            if w.current is not None and self.h.q.tickets[w.current].state in ("called", "serving")
        ]
        assert len(active) == len(set(active)), "a ticket is current at two windows"
        for tid in current:
            t = self.h.q.tickets[tid]
            if t.state in ("called", "serving"):
                assert self.h.q.window(t.window or 0).current == tid
        for t in self.h.q.tickets.values():
            if t.state in ("called", "serving"):
                assert self.h.q.window(t.window or 0).current == t.id, f"{t.number} called but not current"

    @invariant()
    def numbers_unique_per_day(self) -> None:
        seen = [(t.day, t.number) for t in self.h.q.tickets.values()]
        assert len(seen) == len(set(seen))

    def teardown(self) -> None:
        """Finite arrivals, windows keep calling: every waiting ticket is eventually called."""
        for n in WINDOWS:
            if self.h.q.window(n).paused:
                self.h.pause(n, False)
        waiting = {t.id for t in self.h.q.waiting()}
        called: set[str] = set()
        budget = (len(waiting) + 1) * len(WINDOWS) * 2
        while self.h.q.waiting() and budget > 0:
            for n in WINDOWS:
                budget -= 1
                self.h.advance(minutes=3)
                t = self.h.call_next(n)
                if t is not None:
                    assert t.id not in called
                    called.add(t.id)
        assert not self.h.q.waiting(), "tickets left waiting while windows kept calling"
        assert waiting <= called


TestHallMachine = HallMachine.TestCase
TestHallMachine.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_reference_agrees_on_empty_queue(window: int) -> None:
    """the reference policy and the engine agree there is nobody to call in an empty hall."""
    h = EngineHall(CFG, T0)
    assert reference_pick([], window, 0, T0) is None
    assert h.call_next(window) is None
