"""Issue 10 item 17: hostile card data through the real reader driver, simulator on a pty, in a hall.

A chip birth date that disagrees with the number, impossible dates: refused at the
kiosk with a clear notice, no ticket, no priority, no personal data in the log.
Format/control characters never reach a screen or the store. An expired card is
accepted and flagged, and gives no priority by itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.idcard import IdCard
from drivers.idnumber import check_char
from drivers.sim.idcard import SAMPLE_CARDS, make_card
from hallctl import events as ev
from hallctl.daemon import Hall
from tests.devices.test_hall_devices import Watch, device_state, hall_config

TODAY = dt.date.today()
FUTURE = TODAY + dt.timedelta(days=400)


def num(first17: str) -> str:
    return first17 + check_char(first17)


REFUSED: list[tuple[IdCard, str]] = [
    (make_card("李小明", SAMPLE_CARDS["young"].id_number, birth=dt.date(1900, 1, 1)), "card_mismatch"),
    (make_card("未来人", num("440106" + FUTURE.strftime("%Y%m%d") + "123"), sex="1", birth=FUTURE), "impossible_date"),
    (make_card("古人", num("11010518991231123"), sex="1", birth=dt.date(1899, 12, 31)), "impossible_date"),
    (
        make_card("倒期", num("11010519800101123"), valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2010, 1, 1)),
        "impossible_date",
    ),
]


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Hall]:
    h = Hall(hall_config(tmp_path, keep_kinds=("idcard", "printer")), state_dir=tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def swipe(hall: Hall, watch: Watch, card: IdCard) -> ev.Event:
    """Present ``card`` on k2's reader (k2 offers one category: a good card is issued at once)."""
    start = len(watch.events)
    sim = hall.sims["idr-k2"]
    sim.remove()
    sim.present(card)

    def answer(e: ev.Event) -> bool:
        return watch.events.index(e) >= start and (
            (isinstance(e, ev.KioskNotice) and e.kiosk == "k2" and e.code != "printed")
            or (isinstance(e, ev.TicketIssued))
        )

    return await watch.wait(answer)


async def test_refused_cards_get_a_notice_and_no_ticket(hall: Hall, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    watch = Watch(hall)
    await device_state(watch, hall, "idr-k2", "ok")
    for card, code in REFUSED:
        got = await swipe(hall, watch, card)
        assert isinstance(got, ev.KioskNotice), got
        assert got.code == code
        assert "请到导办台办理" in got.message and "guide desk" in got.message_en
    assert not [e for e in watch.events if isinstance(e, ev.CardRead | ev.TicketIssued)]
    assert hall.service._q.find_number("D001") is None
    for card, _ in REFUSED:
        for secret in (card.name, card.id_number, card.birth.strftime("%Y%m%d")):
            assert secret not in caplog.text


async def test_control_characters_are_stripped_and_expired_cards_flagged_without_priority(hall: Hall) -> None:
    watch = Watch(hall)
    await device_state(watch, hall, "idr-k2", "ok")
    spoofed = make_card("\u202e王\u200b小明", num("11010519900101234"), address="北京市\u202e东城区\u200d示例路")
    got = await swipe(hall, watch, spoofed)
    assert isinstance(got, ev.TicketIssued), got
    read = next(e for e in watch.events if isinstance(e, ev.CardRead))
    assert read.holder == "王*明" and read.card_expired is False
    t = hall.service._q.find_number("D001")
    assert t is not None and t.holder_masked == "王*明" and t.priority == "normal"
    holder = await hall.store.holder(t.id)
    assert holder is not None and holder.name == "王小明" and holder.address == "北京市东城区示例路"

    # Expired, young: accepted (people come to renew), flagged, no priority.
    expired = make_card("过期", num("11010520000101456"), valid_from=dt.date(2015, 1, 1), valid_to=dt.date(2025, 1, 1))
    got = await swipe(hall, watch, expired)
    assert isinstance(got, ev.TicketIssued), got
    read = [e for e in watch.events if isinstance(e, ev.CardRead)][-1]
    assert read.card_expired is True and read.elderly is False
    t = hall.service._q.find_number("D002")
    assert t is not None and t.priority == "normal"

    # Expired, elderly: the priority comes from the validated birth date, not from the card's validity.
    old = make_card(
        "老人", SAMPLE_CARDS["elderly"].id_number, valid_from=dt.date(2000, 1, 1), valid_to=dt.date(2020, 1, 1)
    )
    got = await swipe(hall, watch, old)
    assert isinstance(got, ev.TicketIssued), got
    read = [e for e in watch.events if isinstance(e, ev.CardRead)][-1]
    assert read.card_expired is True and read.elderly is True
    t = hall.service._q.find_number("D003")
    assert t is not None and t.priority == "green"
