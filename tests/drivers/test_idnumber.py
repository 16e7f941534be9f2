"""ID number validation, age and masking: what auto-priority and privacy rely on."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.idnumber import (
    InvalidIdNumber,
    age_on,
    check_char,
    is_elderly,
    is_valid_id_number,
    mask_id,
    mask_name,
    normalize_id_number,
    parse_id_number,
    upgrade_legacy,
)

STANDARD_EXAMPLE = "11010519491231002X"  # GB 11643's own example


def test_standard_example_check_char_is_x() -> None:
    """The worked example of docs/protocols.md 1.8: S mod 11 = 2 gives X."""
    assert check_char(STANDARD_EXAMPLE[:17]) == "X"
    parsed = parse_id_number(STANDARD_EXAMPLE)
    assert parsed.birth == dt.date(1949, 12, 31)
    assert parsed.region == "110105"
    assert parsed.sex == "2"  # 17th digit 2: even, female
    assert not parsed.legacy


def test_lowercase_x_is_accepted_and_stored_uppercase() -> None:
    assert normalize_id_number(" 11010519491231002x ") == STANDARD_EXAMPLE


def test_odd_17th_digit_is_male() -> None:
    first17 = "44010620010520123"
    assert parse_id_number(first17 + check_char(first17)).sex == "1"


@pytest.mark.parametrize(
    "bad",
    [
        "110105194912310021",  # wrong check char
        "11010519491231002",  # 17 chars
        "1101051949123100XX",  # X inside the body
        "",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits are not digits here
    ],
)
def test_invalid_numbers_are_rejected(bad: str) -> None:
    assert not is_valid_id_number(bad)


def test_impossible_birth_date_rejected_even_with_right_check_char() -> None:
    first17 = "11010519490230002"
    with pytest.raises(InvalidIdNumber, match="calendar"):
        parse_id_number(first17 + check_char(first17))


def test_error_message_never_repeats_the_number() -> None:
    with pytest.raises(InvalidIdNumber) as info:
        parse_id_number("110105194912310021")
    assert "110105194912310021" not in str(info.value)
    assert "19491231" not in str(info.value)


def test_fifteen_digit_number_has_19xx_birth_and_upgrades() -> None:
    old = "110105491231002"
    parsed = parse_id_number(old)
    assert parsed.legacy
    assert parsed.birth == dt.date(1949, 12, 31)
    assert parsed.sex == "2"
    assert upgrade_legacy(old) == STANDARD_EXAMPLE


@given(
    region=st.from_regex(r"[1-8][0-9]{5}", fullmatch=True),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2026, 12, 31)),
    seq=st.from_regex(r"[0-9]{3}", fullmatch=True),
    position=st.integers(0, 16),
    delta=st.integers(1, 9),
)
def test_any_single_digit_typo_is_caught(region: str, birth: dt.date, seq: str, position: int, delta: int) -> None:
    """MOD 11-2 detects every single-digit error: a clerk's typo never passes."""
    first17 = region + birth.strftime("%Y%m%d") + seq
    number = first17 + check_char(first17)
    assert parse_id_number(number).birth == birth
    digits = list(number)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_valid_id_number("".join(digits))


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (dt.date(1966, 5, 20), dt.date(2026, 5, 19), 59),
        (dt.date(1966, 5, 20), dt.date(2026, 5, 20), 60),
        (dt.date(2000, 2, 29), dt.date(2018, 2, 28), 17),
        (dt.date(2000, 2, 29), dt.date(2018, 3, 1), 18),
        (dt.date(2000, 2, 29), dt.date(2020, 2, 29), 20),
        (dt.date(2000, 2, 29), dt.date(2020, 2, 28), 19),
        (dt.date(1966, 12, 31), dt.date(2027, 1, 1), 60),
    ],
)
def test_age_in_full_years(birth: dt.date, today: dt.date, age: int) -> None:
    assert age_on(birth, today) == age


def test_elderly_threshold_is_configurable() -> None:
    birth = dt.date(1966, 5, 20)
    assert is_elderly(birth, dt.date(2026, 5, 20))
    assert not is_elderly(birth, dt.date(2026, 5, 19))
    assert not is_elderly(birth, dt.date(2026, 5, 20), threshold=65)


def test_mask_id() -> None:
    assert mask_id(STANDARD_EXAMPLE) == "1101**********002X"
    assert mask_id("110105491231002") == "1101*******1002"
    assert mask_id("12345") == "*****"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张*丰"),
        ("张三", "张*"),
        ("张", "张"),
        ("欧阳娜娜", "欧**娜"),
        ("Anna", "A**a"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked
