"""A simulated ID card reader behind a real pty, byte-compatible with GA 467 readers.

It decodes the driver's 10-byte commands with the same :class:`FrameDecoder` the
driver uses and answers with the exact frames of docs/protocols.md 1.3/1.4, so the
driver under test goes through its real framing, timeouts and reconnects. Like a
real SAM, after a successful read ``20 01`` answers ``80`` until the card is
removed and placed again (``redetect=True`` mimics readers that keep finding a
card left on them).

Every person in :data:`SAMPLE_CARDS` is invented; their numbers carry valid check
chars so the daemon's validation accepts them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
import logging

from drivers.idcard import (
    SW3,
    CardType,
    Command,
    FrameDecoder,
    IdCard,
    encode_read_data,
    encode_response,
    nation_of,
    sex_of,
)
from drivers.idnumber import InvalidIdNumber, check_char, parse_id_number
from drivers.sim.pty import PtyPort

log = logging.getLogger(__name__)

PHOTO_SIZE = 1024
DEFAULT_SAM_ID = bytes.fromhex("05000100 15cd5b07 00000000 a1b2c3d4")


def fake_photo(seed: str) -> bytes:
    """1024 bytes that stand in for WLT data: stable per seed, meaningless to any decoder."""
    out = b""
    counter = 0
    while len(out) < PHOTO_SIZE:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return out[:PHOTO_SIZE]


def make_card(
    name: str,
    id_number: str,
    *,
    card_type: CardType = CardType.RESIDENT,
    sex: str | None = None,
    nation: str | None = "01",
    birth: dt.date | None = None,
    address: str = "",
    authority: str = "",
    valid_from: dt.date = dt.date(2020, 1, 1),
    valid_to: dt.date | None = dt.date(2040, 1, 1),
    english_name: str = "",
    nationality: str = "",
    pass_number: str = "",
    issue_count: str = "",
    card_version: str = "",
    renewal_count: str = "",
    previous_number: str = "",
    photo: bytes | None = None,
) -> IdCard:
    """A card as the reader would return it; sex and birth default to what the number says."""
    if sex is None or birth is None:
        try:
            parsed = parse_id_number(id_number)
        except InvalidIdNumber as exc:
            raise ValueError("give sex and birth explicitly for this card number") from exc
        sex = parsed.sex if sex is None else sex
        birth = parsed.birth if birth is None else birth
    has_nation = card_type is CardType.RESIDENT
    return IdCard(
        card_type=card_type,
        name=name,
        sex=sex_of(sex),
        nation=nation_of(nation or "") if has_nation else None,
        birth=birth,
        address=address,
        id_number=id_number.upper(),
        authority=authority,
        valid_from=valid_from,
        valid_to=valid_to,
        english_name=english_name,
        nationality=nationality,
        pass_number=pass_number,
        issue_count=issue_count,
        card_version=card_version,
        renewal_count=renewal_count,
        previous_number=previous_number,
        photo=fake_photo(id_number) if photo is None else photo,
    )


def _number(first17: str) -> str:
    return first17 + check_char(first17)


SAMPLE_CARDS: dict[str, IdCard] = {
    # GB 11643's own example number; born 1949, so 老年人 on any date after 1 Jan 2010; 长期 card.
    "elderly": make_card(
        "王秀英",
        "11010519491231002X",
        address="北京市朝阳区示例路1号院2号楼301",
        authority="北京市公安局朝阳分局",
        valid_from=dt.date(2015, 3, 2),
        valid_to=None,
    ),
    "young": make_card(
        "李小明",
        _number("44010620010520123"),
        address="广东省广州市天河区样例大道88号",
        authority="广州市公安局天河分局",
        valid_from=dt.date(2019, 6, 1),
        valid_to=dt.date(2029, 6, 1),
    ),
    "hui": make_card(
        "马丽娜",
        _number("64010419850308204"),
        nation="03",
        address="宁夏银川市兴庆区测试街5号",
        authority="银川市公安局兴庆区分局",
        valid_from=dt.date(2010, 7, 1),
        valid_to=dt.date(2030, 7, 1),
    ),
    "permit_j": make_card(
        "陈大文",
        _number("81000019900115301"),
        card_type=CardType.HK_MO_TW_RESIDENCE,
        nation=None,
        address="广东省深圳市福田区演示路9号",
        authority="深圳市公安局",
        valid_from=dt.date(2023, 3, 1),
        valid_to=dt.date(2028, 3, 1),
        pass_number="H12345678",
        issue_count="01",
    ),
    "foreigner_y": make_card(
        "安娜",
        _number("93611019900228001"),
        card_type=CardType.FOREIGN_PERMANENT_2023,
        sex="2",
        birth=dt.date(1990, 2, 28),
        valid_from=dt.date(2023, 12, 1),
        valid_to=dt.date(2033, 12, 1),
        english_name="SCHMIDT, ANNA MARIA KATHARINA VON DER LEYEN",
        nationality="DEU",
        renewal_count="00",
    ),
}


@dataclasses.dataclass
class _Card:
    card: IdCard
    found: bool = False
    selected: bool = False
    read: bool = False


class IdCardSim:
    """The reader end of a pty at ``path``; the driver opens ``path`` like ``/dev/ttyUSB0``."""

    def __init__(self, path: str, *, redetect: bool = False, sam_id: bytes = DEFAULT_SAM_ID) -> None:
        self.path = path
        self.redetect = redetect
        self.sam_id = sam_id
        self.port = PtyPort(path)
        self.received: collections.Counter[bytes] = collections.Counter()
        self._decoder = FrameDecoder()
        self._buffer = bytearray()
        self._card: _Card | None = None
        self._read_failures: collections.deque[int] = collections.deque()
        self._corrupt_next = False
        self._garbage_next = b""
        self._silent = False
        self._sam_fault: int | None = None
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.plug()

    def stop(self) -> None:
        self.port.close()

    def unplug(self) -> None:
        """Pull the USB adapter: the path vanishes and the driver's reads fail."""
        self.port.unplug()
        self._buffer.clear()

    def plug(self) -> None:
        self.port.plug(self._on_data)

    # -- the card in the field ---------------------------------------------------------------

    def present(self, card: IdCard) -> None:
        self._card = _Card(card)

    def remove(self) -> None:
        self._card = None

    # -- faults ------------------------------------------------------------------------------

    def fail_next_read(self, sw3: int = SW3.READ_FAILED, times: int = 1) -> None:
        """Answer the next ``times`` read commands with ``sw3`` (41, 31, 32, 33...)."""
        self._read_failures.extend([sw3] * times)

    def corrupt_next_frame(self) -> None:
        """Flip the XOR trailer of the next reply."""
        self._corrupt_next = True

    def inject_garbage(self, data: bytes) -> None:
        """Send ``data`` just before the next reply, as line noise would."""
        self._garbage_next += data

    def go_silent(self, silent: bool = True) -> None:
        """Swallow every command (powered-off reader, broken RX line)."""
        self._silent = silent

    def sam_fault(self, sw3: int | None = SW3.SAM_SELF_TEST_FAILED) -> None:
        """Make the SAM answer every command with ``sw3`` (60/66); None repairs it."""
        self._sam_fault = sw3

    # -- test synchronisation ----------------------------------------------------------------

    async def wait_received(self, command: Command, total: int) -> None:
        """Until ``command`` has arrived ``total`` times since start (no sleeping in tests)."""
        while self.received[command.value] < total:
            self._changed.clear()
            await self._changed.wait()

    # -- protocol ----------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self._buffer += data
        while True:
            consumed, frame = self._decoder.decode(self._buffer)
            if not consumed:
                return
            del self._buffer[:consumed]
            if frame is None:
                continue
            self.received[frame.command] += 1
            self._changed.set()
            if self._silent:
                continue
            self._send(self._answer(frame.command))

    def _send(self, reply: bytes) -> None:
        if self._corrupt_next:
            self._corrupt_next = False
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
        garbage, self._garbage_next = self._garbage_next, b""
        self.port.write(garbage + reply)

    def _answer(self, command: bytes) -> bytes:
        if self._sam_fault is not None:
            return encode_response(self._sam_fault)
        card = self._card
        match command:
            case Command.RESET.value | Command.SAM_STATUS.value:
                return encode_response(SW3.SUCCESS)
            case Command.SAM_ID.value:
                return encode_response(SW3.SUCCESS, self.sam_id)
            case Command.FIND.value:
                if card is None or (card.read and not self.redetect):
                    return encode_response(SW3.FIND_FAILED)
                card.found, card.selected = True, False
                return encode_response(SW3.FIND_SUCCESS, bytes(4))
            case Command.SELECT.value:
                if card is None or not card.found:
                    return encode_response(SW3.SELECT_FAILED)
                card.selected = True
                return encode_response(SW3.SUCCESS, bytes(8))
            case Command.READ.value | Command.READ_WITH_FINGERPRINT.value:
                if card is None or not card.selected:
                    return encode_response(SW3.READ_FAILED)
                card.found = card.selected = False
                if self._read_failures:
                    return encode_response(self._read_failures.popleft())
                card.read = True
                with_fp = command == Command.READ_WITH_FINGERPRINT.value
                data = encode_read_data(card.card, fingerprint=bytes(1024) if with_fp else None)
                return encode_response(SW3.SUCCESS, data)
            case Command.READ_APPENDED_ADDRESS.value:
                return encode_response(SW3.FIELD_NOT_PRESENT)
            case _:
                if command[:1] == b"\x60":  # baud rate change: accepted, the pty has no rate
                    return encode_response(SW3.SUCCESS)
                return encode_response(SW3.BAD_COMMAND)
