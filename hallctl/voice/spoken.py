"""What the announcement says, word for word (pure).

The screen shows ``请A001号到3号窗口办理``; read aloud as written, a synthesiser says
"one" for 001 and may read 3 in English. Halls read ticket numbers digit by digit
(``A零零一号``) or as a whole number (``A一号``), configurable per hall
(``[screen] number_reading``); window numbers are always read as a number (十二号窗口).
Letters stay letters: people say them by their English names, as the synthesiser does.
"""

from __future__ import annotations

import re
from typing import Literal

NumberReading = Literal["digits", "whole"]

DIGITS = "零一二三四五六七八九"
_UNITS = ((1000, "千"), (100, "百"), (10, "十"))


def chinese_number(n: int) -> str:
    """0–99999 as spoken Mandarin: 10 → 十, 12 → 十二, 101 → 一百零一, 110 → 一百一十, 20000 → 二万."""
    if n < 0 or n > 99_999:
        raise ValueError(f"{n} is out of range (0–99999)")
    if n < 10:
        return DIGITS[n]
    if n >= 10_000:
        head, rest = divmod(n, 10_000)
        tail = _below_10000(rest, leading=False)
        return DIGITS[head] + "万" + (("零" if rest < 1000 else "") + tail if rest else "")
    return _below_10000(n, leading=True)


def _below_10000(n: int, *, leading: bool) -> str:
    out: list[str] = []
    zero = False  # a zero is spoken once between two non-zero places (一百零一, 一千零十)
    started = False
    for value, unit in _UNITS:
        d, n = divmod(n, value)
        if d:
            if zero:
                out.append("零")
                zero = False
            # 十二, not 一十二, when ten is the leading place of the whole number
            out.append(unit if (unit == "十" and d == 1 and leading and not started) else DIGITS[d] + unit)
            started = True
        elif started:
            zero = True
    if n:
        if zero:
            out.append("零")
        out.append(DIGITS[n])
    return "".join(out)


_TICKET = re.compile(r"^([A-Za-z]*)(\d+)$")


def ticket_words(number: str, reading: NumberReading = "digits") -> str:
    """``A001`` → ``A零零一`` (digits) or ``A一`` (whole); anything else is left as it is."""
    m = _TICKET.match(number)
    if m is None:
        return number
    letters, digits = m.groups()
    spoken = "".join(DIGITS[int(c)] for c in digits) if reading == "digits" else chinese_number(int(digits))
    return letters.upper() + spoken


def announcement_words(number: str, window: int, reading: NumberReading = "digits") -> str:
    """The sentence the voice says for a call: ``请A零零一号到三号窗口办理``."""
    return f"请{ticket_words(number, reading)}号到{chinese_number(window)}号窗口办理"
