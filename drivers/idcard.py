"""Second-generation ID card readers speaking the SAM serial protocol (GA 467 family).

Two layers, split the pymodbus way so the simulator can reuse the first:

* a pure codec (``encode_command``, ``encode_response``, :class:`FrameDecoder`,
  ``parse_read_data``/``encode_text_block``) with no I/O and no clock;
* :class:`IdCardReader`, which polls a reader over a :class:`~drivers.link.ByteLink`
  under the shared :class:`~drivers.reconnect.Supervisor`.

Frame layout (both directions)::

    AA AA AA 96 69 | LEN (2, BE) | body (LEN-1) | CHK
    host -> reader body: CMD PARA          reader -> host body: SW1 SW2 SW3 [data]
    CHK = XOR of every byte from LEN's high byte to the last body byte

Only SW3 carries meaning. The card data (name, ID number, photo) never reaches a
log line, an exception message or a ``repr``: they show masked forms only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import logging
import time
import unicodedata
from collections.abc import Callable
from typing import ClassVar, NamedTuple

from drivers.base import AsyncContextDriver, ErrorCounters, HealthCallback, HealthTracker
from drivers.errors import DeviceFault, DeviceTimeout, FrameError
from drivers.idnumber import InvalidIdNumber, mask_id, mask_name, parse_id_number
from drivers.link import ByteLink, open_link
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_SIZE = len(PREAMBLE) + 2
MIN_LEN = 3  # CMD PARA CHK: the shortest frame either side sends
MAX_LEN = 0x1000  # the longest known reply (text+photo+1024-byte fingerprint) has LEN 0x090A

TEXT_SIZE = 256
LONG_TERM = "长期"  # valid_to on cards without an expiry date (U+957F U+671F)


# --------------------------------------------------------------------------------------------
# Commands and status words


class Command(bytes, enum.Enum):
    """CMD PARA pairs from GA 467 as used by every SDK examined."""

    RESET = b"\x10\xff"
    SAM_STATUS = b"\x11\xff"
    SAM_ID = b"\x12\xff"
    FIND = b"\x20\x01"
    SELECT = b"\x20\x02"
    READ = b"\x30\x01"
    READ_APPENDED_ADDRESS = b"\x30\x03"
    READ_WITH_FINGERPRINT = b"\x30\x10"


class SW3(enum.IntEnum):
    SUCCESS = 0x90
    FIND_SUCCESS = 0x9F
    HOST_CHECKSUM_ERROR = 0x10
    HOST_LENGTH_ERROR = 0x11
    BAD_COMMAND = 0x21
    NOT_ALLOWED = 0x23
    UNRECOGNISED = 0x24
    CARD_AUTH_SAM_FAILED = 0x31
    SAM_AUTH_CARD_FAILED = 0x32
    DATA_VERIFY_FAILED = 0x33
    FINGERPRINT_VERIFY_FAILED = 0x37
    DATA_LENGTH_ERROR = 0x3F
    UNKNOWN_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    SAM_SELF_TEST_FAILED = 0x60
    SAM_NOT_AUTHORISED = 0x66
    FIND_FAILED = 0x80
    SELECT_FAILED = 0x81
    FIELD_NOT_PRESENT = 0x91


SAM_FAULTS = frozenset({SW3.SAM_SELF_TEST_FAILED, SW3.SAM_NOT_AUTHORISED})


def sw3_name(code: int) -> str:
    try:
        return f"{SW3(code).name.lower()} (0x{code:02X})"
    except ValueError:
        return f"unknown status 0x{code:02X}"


# --------------------------------------------------------------------------------------------
# Framing


def xor(data: bytes) -> int:
    return functools.reduce(lambda acc, b: acc ^ b, data, 0)


def encode_frame(body: bytes) -> bytes:
    """Wrap a body (``CMD PARA`` or ``SW1 SW2 SW3 data``) with preamble, LEN and XOR."""
    length = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + length + body + bytes([xor(length + body)])


def encode_command(cmd: int, para: int) -> bytes:
    """The 10-byte host frame, e.g. find card ``20 01`` → ``AA AA AA 96 69 00 03 20 01 22``."""
    return encode_frame(bytes([cmd, para]))


def encode_response(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    return encode_frame(bytes([sw1, sw2, sw3]) + data)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One checked frame; the accessors read it as a command or as a response."""

    body: bytes

    def __repr__(self) -> str:
        # Read replies carry a whole ID card: show its size, not its bytes.
        return f"Frame({len(self.body)} body bytes, head {self.body[:3].hex(' ')})"

    @property
    def command(self) -> bytes:
        return self.body[:2]

    @property
    def sw3(self) -> int:
        return self.body[2] if len(self.body) >= 3 else -1

    @property
    def data(self) -> bytes:
        return self.body[3:]


class FrameDecoder:
    """Finds frames in a byte stream, pymodbus-style: ``decode(buf) -> (consumed, frame)``.

    ``consumed == 0`` means "need more bytes". Otherwise the caller drops that many
    bytes from the front of its buffer; ``frame`` is None when they were garbage or
    a rejected frame. Hunting: bytes before a preamble are garbage (a tail that
    could be the start of a preamble is kept); a LEN outside ``MIN_LEN..MAX_LEN`` or
    a wrong XOR rejects the frame, which is counted in ``counters.bad_frames``. A
    rejected frame is skipped whole unless another preamble starts inside it, in
    which case hunting resumes there (the rejected one was probably truncated).
    """

    def __init__(self, counters: ErrorCounters | None = None) -> None:
        self.counters = counters if counters is not None else ErrorCounters()

    def decode(self, data: bytes | bytearray) -> tuple[int, Frame | None]:
        buf = bytes(data)
        start = buf.find(PREAMBLE)
        if start < 0:
            keep = _preamble_prefix_len(buf)
            garbage = len(buf) - keep
            self.counters.garbage_bytes += garbage
            return garbage, None
        if start > 0:
            self.counters.garbage_bytes += start
            return start, None
        if len(buf) < HEADER_SIZE:
            return 0, None
        length = int.from_bytes(buf[5:7], "big")
        if not MIN_LEN <= length <= MAX_LEN:
            self.counters.bad_frames += 1
            return len(PREAMBLE), None
        total = HEADER_SIZE + length
        if len(buf) < total:
            return 0, None
        if xor(buf[5 : total - 1]) != buf[total - 1]:
            self.counters.bad_frames += 1
            inner = buf.find(PREAMBLE, len(PREAMBLE), total)
            return (inner if inner > 0 else total), None
        return total, Frame(buf[HEADER_SIZE : total - 1])


def _preamble_prefix_len(buf: bytes) -> int:
    for n in range(min(len(PREAMBLE) - 1, len(buf)), 0, -1):
        if buf.endswith(PREAMBLE[:n]):
            return n
    return 0


# --------------------------------------------------------------------------------------------
# Card data


class CardDataError(ValueError):
    """The reader answered with a well-framed block whose content is not a card."""


EARLIEST_BIRTH = dt.date(1900, 1, 1)
# Card types whose number carries the holder's birth date in digits 7-14.
BIRTH_IN_NUMBER_TYPES: frozenset[str] = frozenset({" ", "J"})


def clean_text(text: str) -> str:
    """``text`` without Unicode control and format characters (Cc, Cf).

    A chip field is data from outside: U+202E (right-to-left override) or zero-width
    characters in a name would reorder or hide what screens and slips show.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


@dataclasses.dataclass(frozen=True, slots=True)
class CardProblem:
    """Why a card is refused for self-service: a stable code and a message for the visitor."""

    code: str  # card_mismatch, impossible_date
    message: str
    message_en: str


class CardType(enum.StrEnum):
    """Value = the flag char at text offset 248 (blank for the resident card)."""

    RESIDENT = " "
    HK_MO_TW_RESIDENCE = "J"  # 港澳台居民居住证
    FOREIGN_PERMANENT_2017 = "I"  # 外国人永久居留证
    FOREIGN_PERMANENT_2023 = "Y"  # 外国人永久居留身份证


class Coded(NamedTuple):
    code: str
    label: str


SEX_LABELS = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

# GB 3304 codes 01-56, in code order.
_NATIONS = (
    "汉",
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
)
NATION_LABELS = {f"{n:02d}": label for n, label in enumerate(_NATIONS, start=1)} | {
    "97": "其他",
    "98": "外国血统中国籍人士",
}
UNKNOWN_LABEL = "未知"


def sex_of(code: str) -> Coded:
    return Coded(code, SEX_LABELS.get(code, UNKNOWN_LABEL))


def nation_of(code: str) -> Coded:
    return Coded(code, NATION_LABELS.get(code, UNKNOWN_LABEL))


@dataclasses.dataclass(frozen=True, repr=False)
class IdCard:
    """What the chip says about its holder. ``photo`` is the opaque WLT blob, never decoded.

    ``id_number`` is the card number of foreigners' cards. ``nation`` is None on
    cards without that field (J, I, Y).
    """

    card_type: CardType
    name: str
    sex: Coded
    nation: Coded | None
    birth: dt.date
    address: str
    id_number: str
    authority: str
    valid_from: dt.date
    valid_to: dt.date | None  # None = 长期 (no expiry)
    english_name: str = ""
    nationality: str = ""
    pass_number: str = ""  # J: 港澳台 travel permit number
    issue_count: str = ""  # J: times issued
    card_version: str = ""  # I
    renewal_count: str = ""  # Y
    previous_number: str = ""  # Y: link to the holder's old card number
    photo: bytes = b""

    def __repr__(self) -> str:
        return f"IdCard({self.card_type.name}, {self.masked_name!r}, {self.masked_id!r}, photo={len(self.photo)} bytes)"

    @property
    def masked_name(self) -> str:
        return mask_name(self.name or self.english_name)

    @property
    def masked_id(self) -> str:
        return mask_id(self.id_number)

    @property
    def id_number_valid(self) -> bool:
        """False for a citizen number whose check char is wrong; foreigners' old numbers too."""
        try:
            parse_id_number(self.id_number)
        except InvalidIdNumber:
            return False
        return True

    @property
    def birth_matches_id(self) -> bool:
        """The chip's birth field agrees with digits 7-14 of the number."""
        try:
            return parse_id_number(self.id_number).birth == self.birth
        except InvalidIdNumber:
            return False

    def expired_on(self, today: dt.date) -> bool:
        return self.valid_to is not None and today > self.valid_to

    def problem(self, today: dt.date) -> CardProblem | None:
        """Why this card must not be used at a kiosk, or None. ``today``: the hall's local date.

        Impossible dates (birth before 1900 or in the future, valid_to before
        valid_from) and a chip birth date that disagrees with the number's are
        refused: either the chip or the number was tampered with, and age-based
        priority must come only from a birth date both agree on. An expired card is
        not a problem (people come to renew it); see :meth:`expired_on`.
        """
        if (
            self.birth < EARLIEST_BIRTH
            or self.birth > today
            or (self.valid_to is not None and self.valid_to < self.valid_from)
        ):
            return CardProblem(
                "impossible_date",
                "证件日期无效，无法自助取号，请到导办台办理",
                "the card's dates are impossible; please see the guide desk",
            )
        if self.card_type.value in BIRTH_IN_NUMBER_TYPES and not self.birth_matches_id:
            return CardProblem(
                "card_mismatch",
                "证件信息不一致（出生日期与证件号码不符），无法自助取号，请到导办台办理",
                "the card's birth date does not match its ID number; please see the guide desk",
            )
        return None


class _Field(NamedTuple):
    key: str
    offset: int
    size: int


# Offsets and sizes in bytes within the 256-byte UCS-2 text block (docs/protocols.md 1.5/1.6).
_COMMON_TAIL = (
    _Field("valid_from", 188, 16),
    _Field("valid_to", 204, 16),
)
LAYOUTS: dict[CardType, tuple[_Field, ...]] = {
    CardType.RESIDENT: (
        _Field("name", 0, 30),
        _Field("sex", 30, 2),
        _Field("nation", 32, 4),
        _Field("birth", 36, 16),
        _Field("address", 52, 70),
        _Field("id_number", 122, 36),
        _Field("authority", 158, 30),
        *_COMMON_TAIL,
    ),
    CardType.HK_MO_TW_RESIDENCE: (
        _Field("name", 0, 30),
        _Field("sex", 30, 2),
        _Field("birth", 36, 16),
        _Field("address", 52, 70),
        _Field("id_number", 122, 36),
        _Field("authority", 158, 30),
        *_COMMON_TAIL,
        _Field("pass_number", 220, 18),
        _Field("issue_count", 238, 4),
    ),
    CardType.FOREIGN_PERMANENT_2017: (
        _Field("english_name", 0, 120),
        _Field("sex", 120, 2),
        _Field("id_number", 122, 30),
        _Field("nationality", 152, 6),
        _Field("name", 158, 30),
        *_COMMON_TAIL,
        _Field("birth", 220, 16),
        _Field("card_version", 236, 4),
        _Field("authority", 240, 8),
    ),
    CardType.FOREIGN_PERMANENT_2023: (
        _Field("name", 0, 30),
        _Field("sex", 30, 2),
        _Field("renewal_count", 32, 4),
        _Field("birth", 36, 16),
        _Field("english_name", 52, 70),  # chars 1-35; 36-46 continue at 220
        _Field("id_number", 122, 36),
        *_COMMON_TAIL,
        _Field("english_name_2", 220, 22),
        _Field("nationality", 242, 6),
        _Field("previous_number", 250, 6),
    ),
}
FLAG_OFFSET = 248
_Y_NAME_1 = 70 // 2


def _text(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace")


def _date(text: str, what: str) -> dt.date:
    try:
        if len(text) != 8 or not text.isascii() or not text.isdigit():
            raise ValueError(what)
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise CardDataError(f"{what} is not a YYYYMMDD date") from exc


def parse_text_block(block: bytes, photo: bytes = b"") -> IdCard:
    """Decode the 256-byte text block; blanks (U+0020) and NULs are padding."""
    if len(block) != TEXT_SIZE:
        raise CardDataError(f"text block has {len(block)} bytes, expected {TEXT_SIZE}")
    flag = _text(block[FLAG_OFFSET : FLAG_OFFSET + 2]).strip(" \x00") or " "
    try:
        card_type = CardType(flag)
    except ValueError as exc:
        raise CardDataError(f"unknown card type flag U+{ord(flag[0]):04X}") from exc
    raw = {f.key: _text(block[f.offset : f.offset + f.size]) for f in LAYOUTS[card_type]}
    fields = {key: clean_text(value.strip(" \x00")).strip() for key, value in raw.items()}
    if card_type is CardType.FOREIGN_PERMANENT_2023:
        # A space at the split point belongs to the name: join before stripping.
        joined = raw["english_name"] + raw["english_name_2"]
        fields["english_name"] = clean_text(joined.replace("\x00", " ")).strip()
    valid_to = fields["valid_to"]
    return IdCard(
        card_type=card_type,
        name=fields["name"],
        sex=sex_of(fields["sex"]),
        nation=nation_of(fields["nation"]) if "nation" in fields else None,
        birth=_date(fields["birth"], "birth"),
        address=fields.get("address", ""),
        id_number=fields["id_number"].upper(),
        authority=fields.get("authority", ""),
        valid_from=_date(fields["valid_from"], "valid_from"),
        valid_to=None if valid_to == LONG_TERM else _date(valid_to, "valid_to"),
        english_name=fields.get("english_name", ""),
        nationality=fields.get("nationality", ""),
        pass_number=fields.get("pass_number", ""),
        issue_count=fields.get("issue_count", ""),
        card_version=fields.get("card_version", ""),
        renewal_count=fields.get("renewal_count", ""),
        previous_number=fields.get("previous_number", ""),
        photo=photo,
    )


def _put(block: bytearray, field: _Field, value: str) -> None:
    encoded = value.encode("utf-16-le")
    if len(encoded) > field.size:
        raise ValueError(f"{field.key} is longer than {field.size // 2} characters")
    block[field.offset : field.offset + len(encoded)] = encoded


def encode_text_block(card: IdCard) -> bytes:
    """The 256-byte block a reader would return for ``card``, blank-padded (simulator, tests)."""
    block = bytearray(" ".encode("utf-16-le") * (TEXT_SIZE // 2))
    values = {
        "name": card.name,
        "sex": card.sex.code,
        "nation": card.nation.code if card.nation is not None else "",
        "birth": card.birth.strftime("%Y%m%d"),
        "address": card.address,
        "id_number": card.id_number,
        "authority": card.authority,
        "valid_from": card.valid_from.strftime("%Y%m%d"),
        "valid_to": LONG_TERM if card.valid_to is None else card.valid_to.strftime("%Y%m%d"),
        "english_name": card.english_name,
        "nationality": card.nationality,
        "pass_number": card.pass_number,
        "issue_count": card.issue_count,
        "card_version": card.card_version,
        "renewal_count": card.renewal_count,
        "previous_number": card.previous_number,
    }
    if card.card_type is CardType.FOREIGN_PERMANENT_2023:
        values["english_name"] = card.english_name[:_Y_NAME_1]
        values["english_name_2"] = card.english_name[_Y_NAME_1:]
    for field in LAYOUTS[card.card_type]:
        _put(block, field, values[field.key])
    _put(block, _Field("flag", FLAG_OFFSET, 2), card.card_type.value)
    return bytes(block)


def parse_read_data(data: bytes, *, fingerprint: bool = False) -> IdCard:
    """Decode the data after SW3 of a ``30 01`` (or ``30 10``) reply, trusting its length fields."""
    lengths = 3 if fingerprint else 2
    head = 2 * lengths
    if len(data) < head:
        raise CardDataError("read reply too short for its length fields")
    text_len, photo_len, *rest = (int.from_bytes(data[i : i + 2], "big") for i in range(0, head, 2))
    fp_len = rest[0] if rest else 0
    if len(data) != head + text_len + photo_len + fp_len:
        raise CardDataError("read reply length does not match its length fields")
    text = data[head : head + text_len]
    photo = data[head + text_len : head + text_len + photo_len]
    return parse_text_block(text, photo)


def encode_read_data(card: IdCard, *, fingerprint: bytes | None = None) -> bytes:
    """The data after SW3 that a reader sends for ``30 01`` (``fingerprint`` None) or ``30 10``."""
    lengths = [TEXT_SIZE, len(card.photo)]
    if fingerprint is not None:
        lengths.append(len(fingerprint))
    head = b"".join(n.to_bytes(2, "big") for n in lengths)
    return head + encode_text_block(card) + card.photo + (fingerprint or b"")


# --------------------------------------------------------------------------------------------
# Driver


class _Session:
    """Per-connection receive state: what arrived but was not yet framed."""

    def __init__(self, link: ByteLink, counters: ErrorCounters) -> None:
        self.link = link
        self.decoder = FrameDecoder(counters)
        self.buffer = bytearray()

    def flush(self) -> None:
        """Bytes nobody asked for (a late or half answer) must not pass for the next reply."""
        stale = len(self.buffer) + len(self.link.discard_input())
        self.decoder.counters.garbage_bytes += stale
        self.buffer.clear()


class IdCardReader(SupervisedDriver, AsyncContextDriver):
    """Polls one reader and hands each newly read card to ``on_card``.

    ``run()`` never returns and never raises a device problem: a missing port is
    ``offline`` (reopened with backoff), a silent reader is ``offline`` with detail,
    repeated read failures are ``degraded`` (the visitor should re-place the card),
    and a SAM fault (``60``/``66``) is ``error`` until a self-test passes again.
    Garbage, bad frames and timeouts are counted in ``counters``.
    """

    kind: ClassVar[str] = "idcard"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        on_card: Callable[[IdCard], None],
        on_health: HealthCallback | None = None,
        baudrate: int = 115200,
        poll_interval: float = 0.3,
        dedupe_seconds: float = 3.0,
        backoff: Backoff | None = None,
        command_timeout: float = 1.0,
        read_timeout: float = 3.0,
        replace_after: int = 3,
        silent_after: int = 3,
    ) -> None:
        self.name = name
        self.url = url
        self._on_card = on_card
        self._baudrate = baudrate
        self._poll_interval = poll_interval
        self._dedupe_seconds = dedupe_seconds
        self._command_timeout = command_timeout
        self._read_timeout = read_timeout
        self._replace_after = replace_after
        self._silent_after = silent_after
        self._health = HealthTracker(on_health)
        self._supervisor: Supervisor[ByteLink] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )
        self._task: asyncio.Task[None] | None = None
        self._last_id: str | None = None
        self._last_seen = 0.0
        self._reset_state()

    def _reset_state(self) -> None:
        self._sam_ok = False
        self._sam_fault: str | None = None
        self._silent = 0
        self._failures = 0

    # -- public surface (run, health, counters, connected: SupervisedDriver) ------------

    @property
    def health_tracker(self) -> HealthTracker:
        """The tracker behind ``health()``; its ``frames`` hold recent non-card frames."""
        return self._health

    async def open(self) -> None:
        """Start polling in the background; an absent port shows as ``offline``, not an error."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"drivers.idcard[{self.name}].run")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])  # unlike awaiting the task, lets our own cancellation through
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: poll loop had stopped: %r", self.name, exc)

    # -- supervisor hooks ----------------------------------------------------------------

    async def _connect(self) -> ByteLink:
        return await open_link(self.url, baudrate=self._baudrate, name=self.name)

    async def _disconnect(self, link: ByteLink) -> None:
        await link.close()

    async def _serve(self, link: ByteLink) -> None:
        self._reset_state()
        session = _Session(link, self.counters)
        while True:
            await self._cycle(session)
            self._refresh_health()
            await asyncio.sleep(self._poll_interval)

    # -- one poll --------------------------------------------------------------------------

    async def _cycle(self, session: _Session) -> None:
        """One self-test or find/select/read round; everything but a lost link is absorbed."""
        try:
            if not self._sam_ok:
                await self._self_test(session)
            else:
                await self._poll(session)
        except DeviceFault as exc:
            self._sam_ok = False
            if self._sam_fault != exc.message:
                log.error("%s: %s", self.name, exc.message)
            self._sam_fault = exc.message
            return
        except DeviceTimeout:
            self.counters.timeouts += 1
            session.flush()
            self._silent += 1
            if self._silent == self._silent_after:
                log.warning("%s: reader stopped answering", self.name)
            return
        except FrameError as exc:
            self._failed_attempt(exc.message)
        if self._silent >= self._silent_after:
            log.info("%s: reader answers again", self.name)
        self._silent = 0

    async def _self_test(self, session: _Session) -> None:
        reply = await self._transact(session, Command.SAM_STATUS, self._command_timeout)
        if reply.sw3 != SW3.SUCCESS:
            raise DeviceFault(self.name, f"SAM self-test failed: {sw3_name(reply.sw3)}")
        if self._sam_fault is not None:
            log.info("%s: SAM self-test passed again", self.name)
        self._sam_ok = True
        self._sam_fault = None

    async def _poll(self, session: _Session) -> None:
        found = await self._transact(session, Command.FIND, self._command_timeout)
        if found.sw3 == SW3.FIND_FAILED:
            if self._failures:
                log.info("%s: card left the reader after failed reads", self.name)
            self._failures = 0  # nothing in the field: idle, not an error
            return
        self._expect(found, SW3.FIND_SUCCESS, "find")
        selected = await self._transact(session, Command.SELECT, self._command_timeout)
        self._expect(selected, SW3.SUCCESS, "select")
        reply = await self._transact(session, Command.READ, self._read_timeout)
        self._expect(reply, SW3.SUCCESS, "read")
        try:
            card = parse_read_data(reply.data)
        except CardDataError as exc:
            self.counters.bad_frames += 1
            raise FrameError(self.name, f"card data unreadable: {exc}") from exc
        self._failures = 0
        self._deliver(card)

    def _expect(self, reply: Frame, wanted: int, step: str) -> None:
        if reply.sw3 == wanted:
            return
        raise FrameError(self.name, f"{step} failed: {sw3_name(reply.sw3)}")

    def _failed_attempt(self, reason: str) -> None:
        """41/81/31/32/33 and friends: the next round retries find/select/read from the start."""
        self._failures += 1
        log.info("%s: %s (attempt %d)", self.name, reason, self._failures)

    def _deliver(self, card: IdCard) -> None:
        now = time.monotonic()
        duplicate = card.id_number == self._last_id and now - self._last_seen < self._dedupe_seconds
        self._last_id, self._last_seen = card.id_number, now
        if duplicate:
            log.debug("%s: same card again within %.1fs: %s", self.name, self._dedupe_seconds, card.masked_id)
            return
        log.info("%s: card read: %s %s", self.name, card.card_type.name, card.masked_id)
        problem = card.problem(dt.date.today())
        if problem is not None:  # the daemon refuses it; the log names no person
            log.warning("%s: %s card with a problem: %s", self.name, card.card_type.name, problem.code)
        try:
            self._on_card(card)
        except Exception:  # the daemon's bug must not stop the reader
            log.exception("%s: on_card callback failed for %s", self.name, card.masked_id)

    # -- wire ------------------------------------------------------------------------------

    async def _transact(self, session: _Session, command: Command, reply_within: float) -> Frame:
        """Send one command and return the first good frame; a rejected frame fails the round."""
        frame = encode_frame(command.value)
        session.flush()
        self._health.record_frame(">", frame)
        await session.link.write(frame)
        deadline = asyncio.get_running_loop().time() + reply_within
        while True:
            bad_before = session.decoder.counters.bad_frames
            consumed, reply = session.decoder.decode(session.buffer)
            if consumed:
                del session.buffer[:consumed]
            if reply is not None and reply.sw3 in SAM_FAULTS:
                raise DeviceFault(self.name, f"SAM unusable: {sw3_name(reply.sw3)}")
            if reply is not None:
                if len(reply.body) <= 16:  # never keep frames that carry card data
                    self._health.record_frame("<", encode_frame(reply.body))
                return reply
            if session.decoder.counters.bad_frames != bad_before:
                raise FrameError(self.name, f"bad frame in reply to {command.name.lower()}")
            if consumed:
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise DeviceTimeout(self.name, f"no reply to {command.name.lower()}")
            session.buffer += await session.link.read(4096, remaining)

    def _refresh_health(self) -> None:
        if self._sam_fault is not None:
            self._health.set("error", self._sam_fault)
        elif self._silent >= self._silent_after:
            self._health.set("offline", "reader does not answer")
        elif not self._sam_ok:
            return  # still connecting: keep whatever the supervisor reported
        elif self._failures >= self._replace_after:
            self._health.set(
                "degraded",
                f"card read failed {self._failures} times: ask the visitor to re-place the card",
            )
        else:
            self._health.set("ok")
