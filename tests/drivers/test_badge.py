"""Staff badge reader against the real pcscd with vsmartcard's virtual readers.

No mocks: pcscd runs for real (started here when it is not already running),
badges are TCP clients of vpcd, and the driver goes through pyscard. pcscd
missing makes these tests fail, because a badge reader that was never tested
against pcscd is not tested at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from smartcard import scard

from drivers.badge import BadgeReader
from drivers.base import Health
from drivers.reconnect import Backoff
from drivers.sim.badge import VirtualBadge
from drivers.sim.pcscd import Pcscd

READER0, READER1 = "Virtual PCD 00 00", "Virtual PCD 00 01"
PORT0, PORT1 = 35963, 35964
FAST = Backoff(initial=0.05, maximum=0.2)
WAIT = 10.0  # vpcd polls presence every few hundred ms; pcscd restarts take a second


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    with Pcscd() as daemon:
        yield daemon


def wait_readers_empty(timeout: float = 5.0) -> None:
    """vpcd notices a closed card connection only at its next presence poll; wait for that,
    so one test's badge is never seen by the next test's driver."""
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == scard.SCARD_S_SUCCESS, "pcscd not reachable"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            query = [(r, scard.SCARD_STATE_UNAWARE) for r in (READER0, READER1)]
            hr, states = scard.SCardGetStatusChange(ctx, 0, query)
            if hr == scard.SCARD_S_SUCCESS and all(s & scard.SCARD_STATE_EMPTY for _, s, _ in states):
                return
            time.sleep(0.05)
        raise AssertionError(f"virtual readers still hold a card: {states}")
    finally:
        scard.SCardReleaseContext(ctx)


class Recorder:
    """Collects what the driver reports, so tests can await the next event."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.healths: asyncio.Queue[Health] = asyncio.Queue()

    def on_badge(self, uid: str) -> None:
        self.events.put_nowait(("badge", uid))

    def on_removed(self) -> None:
        self.events.put_nowait(("removed", ""))

    def on_health(self, health: Health) -> None:
        self.healths.put_nowait(health)

    async def next_event(self, timeout: float = WAIT) -> tuple[str, str]:
        async with asyncio.timeout(timeout):
            return await self.events.get()

    async def health(self, state: str, detail: str = "", timeout: float = WAIT) -> Health:
        """The next reported health in ``state`` whose detail contains ``detail``."""
        async with asyncio.timeout(timeout):
            while True:
                health = await self.healths.get()
                if health.state == state and detail in health.detail:
                    return health


class Hall:
    """Runs BadgeReaders as tasks and hands out virtual badges; cleans both up."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.badges: list[VirtualBadge] = []

    def reader(self, reader_name: str = READER0, poll_timeout: float = 0.2) -> tuple[BadgeReader, Recorder]:
        rec = Recorder()
        reader = BadgeReader(
            "badge-test",
            reader_name,
            on_badge=rec.on_badge,
            on_removed=rec.on_removed,
            on_health=rec.on_health,
            poll_timeout=poll_timeout,
            backoff=FAST,
        )
        self.tasks.append(asyncio.create_task(reader.run()))
        return reader, rec

    def badge(self, uid: str, port: int = PORT0, uid_sw: bytes = b"\x90\x00") -> VirtualBadge:
        card = VirtualBadge(bytes.fromhex(uid), port, uid_sw=uid_sw)
        self.badges.append(card)
        return card

    async def close(self) -> None:
        for card in self.badges:
            await card.remove()
        crashed = [task for task in self.tasks if task.done()]
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        assert not crashed, f"driver task ended on its own: {crashed!r}"


@pytest.fixture
async def hall(pcscd: Pcscd) -> AsyncIterator[Hall]:
    await asyncio.to_thread(wait_readers_empty)
    h = Hall()
    try:
        yield h
    finally:
        await h.close()


async def test_insert_reports_uid_and_removal_signs_out(hall: Hall) -> None:
    """A badge put on the reader gives its UID in upper-case hex; taking it off gives removed."""
    reader, rec = hall.reader()
    await rec.health("ok")
    card = hall.badge("04A1B2C3")
    await card.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")
    assert card.apdus == [bytes.fromhex("FFCA000000")]
    assert reader.current_uid == "04A1B2C3"
    await card.remove()
    assert await rec.next_event() == ("removed", "")
    assert reader.current_uid is None


async def test_reinsert_and_another_badge_give_new_events(hall: Hall) -> None:
    """The same badge put back, then a colleague's badge, each sign in again."""
    _, rec = hall.reader()
    await rec.health("ok")
    first = hall.badge("04A1B2C3")
    await first.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")
    await first.remove()
    assert await rec.next_event() == ("removed", "")
    await first.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")
    await first.remove()
    assert await rec.next_event() == ("removed", "")
    second = hall.badge("0455667788AABB")
    await second.insert()
    assert await rec.next_event() == ("badge", "0455667788AABB")


async def test_second_reader_is_watched_independently(hall: Hall) -> None:
    """Each window's driver reports only the badges on its own reader."""
    _, rec0 = hall.reader(READER0)
    _, rec1 = hall.reader(READER1)
    await rec0.health("ok")
    await rec1.health("ok")
    await hall.badge("0A0B0C0D", PORT1).insert()
    assert await rec1.next_event() == ("badge", "0A0B0C0D")
    await hall.badge("04A1B2C3", PORT0).insert()
    assert await rec0.next_event() == ("badge", "04A1B2C3")
    assert rec0.events.empty() and rec1.events.empty()


async def test_badge_already_on_reader_at_start_is_reported(hall: Hall) -> None:
    """A badge left on the reader when the daemon (re)starts still signs its owner in."""
    await hall.badge("04A1B2C3").insert()
    _, rec = hall.reader()
    assert await rec.next_event() == ("badge", "04A1B2C3")


async def test_card_refusing_get_uid_is_counted_not_fatal(hall: Hall) -> None:
    """A non-badge card (SW 6A 82) is counted as a bad frame; the next real badge still works."""
    reader, rec = hall.reader()
    await rec.health("ok")
    bank_card = hall.badge("11223344", uid_sw=b"\x6a\x82")
    await bank_card.insert()
    async with asyncio.timeout(WAIT):
        await bank_card.apdu_seen.wait()  # the driver asked this card for its UID
    await bank_card.remove()
    good = hall.badge("04A1B2C3")
    await good.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")  # nothing for the bank card
    assert reader.tracker.counters.bad_frames == 1
    assert reader.last_error is not None and "6A82" in reader.last_error.message
    assert reader.health().state == "ok"


async def test_absent_reader_is_offline_with_detail(hall: Hall) -> None:
    """A reader name pcscd does not know means offline, and the detail names the reader."""
    reader, rec = hall.reader("Virtual PCD 00 07")
    await rec.health("offline", "reader 'Virtual PCD 00 07' not present")
    assert reader.health().state == "offline"


async def test_pcscd_down_is_offline_and_recovers(hall: Hall, pcscd: Pcscd) -> None:
    """pcscd stopping means offline 'pcscd not running'; when it returns, badges work again.

    vpcd drops the card connection when pcscd stops, so the badge that was on the
    reader is reported removed once the reader is back: sign-in/out stay paired.
    """
    if not pcscd.owned:
        pytest.skip("pcscd was started outside the tests; not ours to stop")
    _, rec = hall.reader()
    await rec.health("ok")
    card = hall.badge("04A1B2C3")
    await card.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")
    await asyncio.to_thread(pcscd.stop)
    try:
        # The first error seen may be whatever pcscd said while stopping (a pending
        # wait gets "Access denied"); the reconnect attempt then names the cause.
        await rec.health("offline", "pcscd not running")
    finally:
        await asyncio.to_thread(pcscd.start)
    await rec.health("ok")
    assert await rec.next_event() == ("removed", "")
    await card.remove()
    await card.insert()
    assert await rec.next_event() == ("badge", "04A1B2C3")


async def test_cancel_is_prompt_even_with_long_poll(pcscd: Pcscd) -> None:
    """Shutdown does not wait out a long SCardGetStatusChange: SCardCancel wakes the thread."""
    await asyncio.to_thread(wait_readers_empty)
    rec = Recorder()
    reader = BadgeReader(
        "badge-test",
        READER0,
        on_badge=rec.on_badge,
        on_removed=rec.on_removed,
        on_health=rec.on_health,
        poll_timeout=30.0,
        backoff=FAST,
    )
    task = asyncio.create_task(reader.run())
    await rec.health("ok")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2.0
