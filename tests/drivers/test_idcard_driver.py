"""The real IdCardReader against the simulator behind a real pty opened by pyserial.

Every wait is on an event (a card, a health change, a command seen by the
simulator) bounded by ``asyncio.timeout``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Health, HealthState
from drivers.idcard import SW3, Command, IdCard, IdCardReader
from drivers.reconnect import Backoff
from drivers.sim.idcard import SAMPLE_CARDS, IdCardSim, make_card

WAIT = 5.0
ELDERLY = SAMPLE_CARDS["elderly"]
YOUNG = SAMPLE_CARDS["young"]
PERMIT = SAMPLE_CARDS["permit_j"]


class Harness:
    """Collects what the driver reports, so tests can wait for it."""

    def __init__(self) -> None:
        self.cards: asyncio.Queue[IdCard] = asyncio.Queue()
        self.health: asyncio.Queue[Health] = asyncio.Queue()
        self.history: list[Health] = []
        self.fail_callback = False

    def on_card(self, card: IdCard) -> None:
        self.cards.put_nowait(card)
        if self.fail_callback:
            self.fail_callback = False
            raise RuntimeError("daemon bug")

    def on_health(self, health: Health) -> None:
        self.history.append(health)
        self.health.put_nowait(health)

    async def next_card(self) -> IdCard:
        async with asyncio.timeout(WAIT):
            return await self.cards.get()

    async def wait_health(self, state: HealthState, detail: str = "") -> Health:
        async with asyncio.timeout(WAIT):
            while True:
                health = await self.health.get()
                if health.state == state and detail in health.detail:
                    return health


SimFactory = Callable[..., contextlib.AbstractAsyncContextManager[IdCardSim]]


@pytest.fixture
def make_sim(tmp_path: Path) -> SimFactory:
    @contextlib.asynccontextmanager
    async def factory(**kwargs: Any) -> AsyncIterator[IdCardSim]:
        sim = IdCardSim(str(tmp_path / "ttyIDCARD"), **kwargs)
        await sim.start()
        try:
            yield sim
        finally:
            sim.stop()

    return factory


@pytest.fixture
async def sim(make_sim: SimFactory) -> AsyncIterator[IdCardSim]:
    async with make_sim() as s:
        yield s


@contextlib.asynccontextmanager
async def running(sim: IdCardSim, **kwargs: Any) -> AsyncIterator[tuple[IdCardReader, Harness]]:
    harness = Harness()
    options: dict[str, Any] = {
        "poll_interval": 0.02,
        "backoff": Backoff(initial=0.05, maximum=0.2),
        "command_timeout": 1.0,
        "read_timeout": 2.0,
    }
    options.update(kwargs)
    reader = IdCardReader("idcard-test", sim.path, on_card=harness.on_card, on_health=harness.on_health, **options)
    async with reader:
        await harness.wait_health("ok")
        yield reader, harness


async def assert_no_more_cards(sim: IdCardSim, harness: Harness, polls: int = 3) -> None:
    """Let the driver finish a few more find rounds, then check nothing else was reported."""
    async with asyncio.timeout(WAIT):
        await sim.wait_received(Command.FIND, sim.received[Command.FIND.value] + polls)
    assert harness.cards.empty()


async def test_presented_card_arrives_exactly_once(sim: IdCardSim) -> None:
    async with running(sim) as (reader, harness):
        assert sim.received[Command.SAM_STATUS.value] == 1  # self-test before polling
        sim.present(ELDERLY)
        card = await harness.next_card()
        assert card == ELDERLY  # every field, photo included, survived the wire
        assert card.valid_to is None
        await assert_no_more_cards(sim, harness)
        assert reader.health() == Health("ok")
        assert reader.counters.as_dict() == {"bad_frames": 0, "timeouts": 0, "garbage_bytes": 0, "reconnects": 0}


async def test_card_left_on_a_redetecting_reader_is_reported_once(make_sim: SimFactory) -> None:
    async with make_sim(redetect=True) as sim, running(sim) as (_reader, harness):
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.READ, 4)  # read again and again...
        await assert_no_more_cards(sim, harness)  # ...but reported once


async def test_same_card_within_window_is_suppressed_but_another_card_is_not(
    sim: IdCardSim,
) -> None:
    async with running(sim, dedupe_seconds=60.0) as (_reader, harness):
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG
        sim.remove()
        sim.present(YOUNG)
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.READ, 2)
        sim.remove()
        sim.present(PERMIT)
        assert await harness.next_card() == PERMIT


async def test_remove_and_present_again_gives_a_new_read(sim: IdCardSim) -> None:
    async with running(sim, dedupe_seconds=0.0) as (_reader, harness):
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG
        await assert_no_more_cards(sim, harness)  # card stays: the SAM answers 80
        sim.remove()
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG


async def test_garbage_mid_stream_is_counted_and_reading_continues(sim: IdCardSim) -> None:
    garbage = b"\x00\x13\x37line noise\xff\xaa\xaa"
    async with running(sim) as (reader, harness):
        sim.inject_garbage(garbage)
        sim.present(PERMIT)
        assert await harness.next_card() == PERMIT
        assert reader.counters.garbage_bytes == len(garbage)
        assert reader.counters.bad_frames == 0


async def test_bad_checksum_is_counted_and_the_read_is_retried(sim: IdCardSim) -> None:
    async with running(sim) as (reader, harness):
        sim.corrupt_next_frame()
        sim.present(ELDERLY)
        assert await harness.next_card() == ELDERLY
        assert reader.counters.bad_frames == 1
        assert reader.counters.timeouts == 0  # rejected at once, not waited out
        await assert_no_more_cards(sim, harness)


async def test_corrupted_card_data_reply_is_counted_and_retried(sim: IdCardSim) -> None:
    async with running(sim) as (reader, harness):
        sim.present(ELDERLY)
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.SELECT, 1)
        sim.corrupt_next_frame()  # hits the 1295-byte read reply
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.READ, 1)
        # Like a real SAM, the simulator now answers 80 until the card is placed again.
        await assert_no_more_cards(sim, harness)
        assert reader.counters.bad_frames == 1
        sim.remove()
        sim.present(ELDERLY)
        assert await harness.next_card() == ELDERLY
        assert reader.counters.bad_frames == 1
        assert reader.counters.garbage_bytes == 0  # the whole bad frame was skipped at once


async def test_read_failure_41_then_success(sim: IdCardSim) -> None:
    async with running(sim) as (_reader, harness):
        sim.fail_next_read(SW3.READ_FAILED)
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG
        assert sim.received[Command.READ.value] == 2
        await assert_no_more_cards(sim, harness)
        assert all(h.state != "degraded" for h in harness.history)


async def test_repeated_failures_ask_to_replace_the_card(sim: IdCardSim) -> None:
    async with running(sim, replace_after=3) as (reader, harness):
        sim.fail_next_read(SW3.DATA_VERIFY_FAILED, times=3)
        sim.present(YOUNG)
        degraded = await harness.wait_health("degraded")
        assert "re-place" in degraded.detail
        assert await harness.next_card() == YOUNG  # the 4th attempt works
        await harness.wait_health("ok")

        sim.remove()
        sim.fail_next_read(SW3.CARD_AUTH_SAM_FAILED, times=1000)
        sim.present(ELDERLY)
        await harness.wait_health("degraded", "re-place")
        sim.remove()  # the visitor takes the card away: nothing is wrong with the reader
        await harness.wait_health("ok")
        assert harness.cards.empty()
        assert reader.counters.bad_frames == 0


async def test_silence_is_counted_and_reported_then_recovers(sim: IdCardSim) -> None:
    async with running(sim, command_timeout=0.2, silent_after=3) as (reader, harness):
        sim.go_silent(True)
        health = await harness.wait_health("offline")
        assert "answer" in health.detail
        assert reader.counters.timeouts >= 3
        sim.go_silent(False)
        await harness.wait_health("ok")
        sim.present(ELDERLY)
        assert await harness.next_card() == ELDERLY


async def test_unplug_goes_offline_and_replug_recovers_by_itself(sim: IdCardSim) -> None:
    async with running(sim) as (reader, harness):
        sim.unplug()
        await harness.wait_health("offline")
        sim.plug()
        await harness.wait_health("ok")
        assert reader.counters.reconnects >= 1
        sim.present(PERMIT)
        assert await harness.next_card() == PERMIT


async def test_reader_started_before_the_port_exists_comes_up(make_sim: SimFactory) -> None:
    async with make_sim() as sim:
        sim.unplug()
        harness = Harness()
        reader = IdCardReader(
            "idcard-test",
            sim.path,
            on_card=harness.on_card,
            on_health=harness.on_health,
            poll_interval=0.02,
            backoff=Backoff(initial=0.05, maximum=0.2),
        )
        async with reader:
            async with asyncio.timeout(WAIT):
                while reader.counters.reconnects == 0 and not harness.history:
                    await harness.health.get()
            assert reader.health().state == "offline"
            sim.plug()
            await harness.wait_health("ok")
            sim.present(YOUNG)
            assert await harness.next_card() == YOUNG


@pytest.mark.parametrize("code", [SW3.SAM_SELF_TEST_FAILED, SW3.SAM_NOT_AUTHORISED])
async def test_sam_fault_at_start_is_an_error(sim: IdCardSim, code: SW3) -> None:
    sim.sam_fault(code)
    harness = Harness()
    reader = IdCardReader(
        "idcard-test",
        sim.path,
        on_card=harness.on_card,
        on_health=harness.on_health,
        poll_interval=0.02,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    async with reader:
        error = await harness.wait_health("error")
        assert "SAM" in error.detail
        assert f"0x{code:02X}" in error.detail
        assert sim.received[Command.FIND.value] == 0  # no polling on a broken SAM
        assert [h.state for h in harness.history] == ["error"]
        sim.sam_fault(None)
        await harness.wait_health("ok")
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG


async def test_sam_fault_while_polling_is_an_error_until_repaired(sim: IdCardSim) -> None:
    async with running(sim) as (_reader, harness):
        sim.sam_fault(SW3.SAM_SELF_TEST_FAILED)
        await harness.wait_health("error", "SAM")
        sim.present(ELDERLY)
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.SAM_STATUS, 3)  # keeps testing, not crashing
        assert harness.cards.empty()
        sim.sam_fault(None)
        await harness.wait_health("ok")
        assert await harness.next_card() == ELDERLY


async def test_failing_callback_does_not_stop_the_reader(sim: IdCardSim) -> None:
    async with running(sim) as (_reader, harness):
        harness.fail_callback = True
        sim.present(YOUNG)
        assert await harness.next_card() == YOUNG
        sim.remove()
        sim.present(PERMIT)
        assert await harness.next_card() == PERMIT


async def test_logs_never_carry_names_or_id_numbers(sim: IdCardSim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(sim, replace_after=1) as (reader, harness):
        harness.fail_callback = True
        sim.fail_next_read(SW3.READ_FAILED)
        sim.corrupt_next_frame()
        sim.present(ELDERLY)
        assert await harness.next_card() == ELDERLY
        sim.remove()
        sim.present(ELDERLY)  # duplicate within the window: logged at debug
        async with asyncio.timeout(WAIT):
            await sim.wait_received(Command.READ, sim.received[Command.READ.value] + 1)
        sim.remove()
        sim.present(PERMIT)
        assert await harness.next_card() == PERMIT
        sim.unplug()
        await harness.wait_health("offline")
        frames = " ".join(reader.health_tracker.frames)
    text = caplog.text
    assert "1101**********002X" in text  # the masked form is there to correlate
    for secret in (ELDERLY.name, ELDERLY.id_number, PERMIT.name, PERMIT.id_number, ELDERLY.address, "19491231"):
        assert secret not in text
    assert ELDERLY.id_number.encode("utf-16-le").hex(" ") not in frames
    assert len(frames) > 0


# ---- hostile card data (issue 10 item 17) --------------------------------------------------


def _num(first17: str) -> str:
    from drivers.idnumber import check_char

    return first17 + check_char(first17)


TODAY = dt.date.today()
FUTURE = TODAY + dt.timedelta(days=400)
MISMATCH = make_card("李小明", YOUNG.id_number, birth=dt.date(1900, 1, 1))  # number says 2001
FUTURE_BIRTH = make_card("未来人", _num("440106" + FUTURE.strftime("%Y%m%d") + "123"), sex="1", birth=FUTURE)
ANCIENT = make_card("古人", _num("11010518991231123"), sex="1", birth=dt.date(1899, 12, 31))
BACKWARDS = make_card("倒期", _num("11010519800101123"), valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2010, 1, 1))
SPOOFED = make_card("\u202e王\u200b小明\u2066", _num("11010519900101234"), address="北京市\u202e东城区\x07示例路")
EXPIRED = make_card("过期", _num("11010520000101456"), valid_from=dt.date(2015, 1, 1), valid_to=dt.date(2025, 1, 1))


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (MISMATCH, "card_mismatch"),
        (FUTURE_BIRTH, "impossible_date"),
        (ANCIENT, "impossible_date"),
        (BACKWARDS, "impossible_date"),
    ],
    ids=["chip-1900-number-2001", "birth-in-future", "birth-before-1900", "valid-to-before-from"],
)
async def test_impossible_or_disagreeing_cards_are_reported_as_problems(
    sim: IdCardSim, caplog: pytest.LogCaptureFixture, card: IdCard, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(sim) as (_reader, harness):
        sim.present(card)
        got = await harness.next_card()
    problem = got.problem(TODAY)
    assert problem is not None and problem.code == code
    assert "导办台" in problem.message and problem.message_en
    assert f"card with a problem: {code}" in caplog.text
    for secret in (card.name, card.id_number, card.birth.strftime("%Y%m%d")):  # masked id: correlation only
        assert secret not in caplog.text


async def test_format_and_control_characters_are_stripped_from_card_text(sim: IdCardSim) -> None:
    async with running(sim) as (_reader, harness):
        sim.present(SPOOFED)
        got = await harness.next_card()
    assert got.name == "王小明" and got.masked_name == "王*明"
    assert got.address == "北京市东城区示例路"
    assert got.problem(TODAY) is None


async def test_expired_card_is_delivered_without_a_problem_but_is_expired(sim: IdCardSim) -> None:
    async with running(sim) as (_reader, harness):
        sim.present(EXPIRED)
        got = await harness.next_card()
    assert got.problem(TODAY) is None and got.expired_on(TODAY)
