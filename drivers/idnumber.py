"""Citizen ID numbers (GB 11643-1999) and the masks that keep them out of logs.

The kiosk trusts the chip, but the number is also typed in by clerks and read
back from appointments, so it is validated here once: the MOD 11-2 check char
catches every single-digit typo and every swap of two adjacent digits. Error
messages never repeat the number they reject.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

Sex = Literal["1", "2"]  # GB/T 2261.1 codes: 1 male, 2 female


class InvalidIdNumber(ValueError):
    """The text is not a citizen ID number; the message says why, never what."""


@dataclasses.dataclass(frozen=True)
class IdNumber:
    """A validated number. ``value`` is the canonical form (upper-case ``X``)."""

    value: str
    region: str
    birth: dt.date
    sex: Sex

    def __repr__(self) -> str:
        # The default repr would print the full number into any log that shows the object.
        return f"IdNumber({mask_id(self.value)!r})"

    @property
    def legacy(self) -> bool:
        """Issued before 1999 with 15 digits, no century and no check char."""
        return len(self.value) == 15


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check char for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidIdNumber("check char needs exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _birth(yyyymmdd: str) -> dt.date:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError as exc:
        raise InvalidIdNumber("birth date inside the number is not a calendar date") from exc


def parse_id_number(raw: str) -> IdNumber:
    """Validate an 18- or 15-character number; surrounding blanks and ``x`` are tolerated."""
    text = raw.strip().upper()
    if len(text) == 18:
        body, check = text[:17], text[17]
        if not body.isascii() or not body.isdigit():
            raise InvalidIdNumber("the first 17 characters must be digits")
        if check != check_char(body):
            raise InvalidIdNumber("check char does not match")
        birth = _birth(body[6:14])
        sequence_digit = body[16]
    elif len(text) == 15:
        if not text.isascii() or not text.isdigit():
            raise InvalidIdNumber("a 15-character number has digits only")
        birth = _birth("19" + text[6:12])
        sequence_digit = text[14]
    else:
        raise InvalidIdNumber(f"expected 18 or 15 characters, got {len(text)}")
    sex: Sex = "1" if int(sequence_digit) % 2 else "2"
    return IdNumber(value=text, region=text[:6], birth=birth, sex=sex)


def is_valid_id_number(raw: str) -> bool:
    try:
        parse_id_number(raw)
    except InvalidIdNumber:
        return False
    return True


def normalize_id_number(raw: str) -> str:
    """The form to store and compare: validated, upper-case check char."""
    return parse_id_number(raw).value


def upgrade_legacy(number: str) -> str:
    """The 18-digit form of a 15-digit number, so old and new records compare equal."""
    parsed = parse_id_number(number)
    if not parsed.legacy:
        return parsed.value
    first17 = parsed.value[:6] + "19" + parsed.value[6:]
    return first17 + check_char(first17)


def age_on(birth: dt.date, today: dt.date) -> int:
    """Full years on ``today``.

    Someone born on 29 February becomes a year older on 1 March in common years
    (the day after 28 February), the reading used for 周岁 in Chinese practice.
    """
    before_birthday = (today.month, today.day) < (birth.month, birth.day)
    return today.year - birth.year - int(before_birthday)


def is_elderly(birth: dt.date, today: dt.date, threshold: int = 60) -> bool:
    """老年人 per the Law on the Protection of the Rights of the Elderly, art. 2 (60+)."""
    return age_on(birth, today) >= threshold


def mask_id(number: str) -> str:
    """``1101**********002X``: region prefix and tail stay, so staff can still match a slip."""
    text = number.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_name(name: str) -> str:
    """First and last character kept (``张*丰``); a two-character name keeps its first (``张*``)."""
    text = name.strip()
    if len(text) <= 1:
        return text
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]
