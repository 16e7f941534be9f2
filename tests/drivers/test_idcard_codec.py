"""The GA 467 codec pinned to the literal frames of docs/protocols.md section 1."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.base import ErrorCounters
from drivers.idcard import (
    PREAMBLE,
    SW3,
    CardDataError,
    CardType,
    Command,
    Frame,
    FrameDecoder,
    IdCard,
    encode_command,
    encode_read_data,
    encode_response,
    encode_text_block,
    parse_read_data,
    parse_text_block,
)
from drivers.idnumber import age_on
from drivers.sim.idcard import SAMPLE_CARDS, make_card


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("command", "frame"),
    [
        ((0x10, 0xFF), "AA AA AA 96 69 00 03 10 FF EC"),
        ((0x11, 0xFF), "AA AA AA 96 69 00 03 11 FF ED"),
        ((0x12, 0xFF), "AA AA AA 96 69 00 03 12 FF EE"),
        ((0x20, 0x01), "AA AA AA 96 69 00 03 20 01 22"),
        ((0x20, 0x02), "AA AA AA 96 69 00 03 20 02 21"),
        ((0x30, 0x01), "AA AA AA 96 69 00 03 30 01 32"),
        ((0x30, 0x03), "AA AA AA 96 69 00 03 30 03 30"),
        ((0x30, 0x10), "AA AA AA 96 69 00 03 30 10 23"),
        ((0x60, 0x04), "AA AA AA 96 69 00 03 60 04 67"),
    ],
)
def test_command_frames_match_the_table(command: tuple[int, int], frame: str) -> None:
    assert encode_command(*command) == h(frame)


def test_command_enum_is_the_table() -> None:
    assert encode_command(*Command.FIND.value) == h("AA AA AA 96 69 00 03 20 01 22")


@pytest.mark.parametrize(
    ("frame", "sw3", "data"),
    [
        ("AA AA AA 96 69 00 04 00 00 90 94", 0x90, b""),
        ("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", 0x9F, bytes(4)),
        ("AA AA AA 96 69 00 0C 00 00 90" + " 00" * 8 + " 9C", 0x90, bytes(8)),
        ("AA AA AA 96 69 00 04 00 00 80 84", 0x80, b""),
        ("AA AA AA 96 69 00 04 00 00 81 85", 0x81, b""),
        ("AA AA AA 96 69 00 04 00 00 41 45", 0x41, b""),
    ],
)
def test_captured_responses_decode_and_encode(frame: str, sw3: int, data: bytes) -> None:
    raw = h(frame)
    consumed, decoded = FrameDecoder().decode(raw)
    assert consumed == len(raw)
    assert decoded is not None
    assert (decoded.sw3, decoded.data) == (sw3, data)
    assert encode_response(sw3, data) == raw


def test_bad_checksum_is_rejected_and_counted() -> None:
    counters = ErrorCounters()
    raw = h("AA AA AA 96 69 00 04 00 00 80 85")
    assert FrameDecoder(counters).decode(raw) == (len(raw), None)
    assert counters.bad_frames == 1


def test_impossible_length_is_rejected_and_hunting_resumes() -> None:
    counters = ErrorCounters()
    decoder = FrameDecoder(counters)
    good = h("AA AA AA 96 69 00 04 00 00 80 84")
    buf = bytearray(PREAMBLE + b"\xff\xff" + good)
    frames = drain(decoder, buf)
    assert [f.sw3 for f in frames] == [0x80]
    assert counters.bad_frames == 1


def test_truncated_frame_followed_by_a_good_one_loses_only_the_truncated() -> None:
    counters = ErrorCounters()
    good = h("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
    truncated = good[:9]
    frames = drain(FrameDecoder(counters), bytearray(truncated + good + good))
    assert [f.sw3 for f in frames] == [0x9F, 0x9F]
    assert counters.bad_frames == 1


def test_incomplete_frame_waits_for_more() -> None:
    raw = h("AA AA AA 96 69 00 04 00 00 90 94")
    decoder = FrameDecoder()
    for cut in range(len(raw)):
        assert decoder.decode(raw[:cut]) == (0, None)
    assert decoder.counters.garbage_bytes == 0


def test_garbage_ending_in_half_a_preamble_is_counted_exactly() -> None:
    counters = ErrorCounters()
    garbage = b"\x00\x13\x37noise\xaa\xaa"
    good = h("AA AA AA 96 69 00 04 00 00 90 94")
    frames = drain(FrameDecoder(counters), bytearray(garbage + good))
    assert [f.sw3 for f in frames] == [0x90]
    assert counters.garbage_bytes == len(garbage)


def drain(decoder: FrameDecoder, buf: bytearray) -> list[Frame]:
    frames: list[Frame] = []
    while True:
        consumed, frame = decoder.decode(buf)
        assert 0 <= consumed <= len(buf)
        if not consumed:
            return frames
        del buf[:consumed]
        if frame is not None:
            frames.append(frame)


@given(st.binary(max_size=3000))
def test_decoder_never_raises_and_always_progresses(data: bytes) -> None:
    counters = ErrorCounters()
    buf = bytearray(data)
    drain(FrameDecoder(counters), buf)
    # What stays is at most one incomplete frame or half a preamble, never lost silently.
    assert len(buf) + counters.garbage_bytes <= len(data)
    assert not buf or buf.startswith(PREAMBLE[: min(len(buf), 5)])


@given(garbage=st.binary(max_size=200), sw3=st.integers(0, 255), data=st.binary(max_size=300))
def test_resync_after_any_garbage_prefix(garbage: bytes, sw3: int, data: bytes) -> None:
    frame = encode_response(sw3, data)
    assume(PREAMBLE not in garbage)
    counters = ErrorCounters()
    frames = drain(FrameDecoder(counters), bytearray(garbage + frame))
    assert [(f.sw3, f.data) for f in frames] == [(sw3, data)]
    assert counters.garbage_bytes == len(garbage)
    assert counters.bad_frames == 0


# ---------------------------------------------------------------------------------------------
# Text block


def test_read_reply_layout_is_byte_exact() -> None:
    """Header, text at 14, photo at 270, XOR last: the 1295-byte reply of docs/protocols.md 1.4."""
    card = SAMPLE_CARDS["elderly"]
    frame = encode_response(SW3.SUCCESS, encode_read_data(card))
    assert len(frame) == 1295
    assert frame[:14] == h("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")
    text = frame[14:270]
    assert text[30:32] == h("32 00")  # sex "2"
    assert text[32:36] == h("30 00 31 00")  # nation "01"
    assert text[36:52] == h("31 00 39 00 34 00 39 00 31 00 32 00 33 00 31 00")  # 19491231
    assert text[122:158] == "11010519491231002X".encode("utf-16-le")
    assert text[204:212] == h("7F 95 1F 67 20 00 20 00")  # 长期 then blank padding
    assert text[248:250] == h("20 00")  # resident card: blank type flag
    assert frame[270:1294] == card.photo
    _, decoded = FrameDecoder().decode(frame)
    assert decoded is not None
    assert parse_read_data(decoded.data) == card


@pytest.mark.parametrize(
    ("fp_len", "total", "len_bytes"),
    [(1024, 2321, "09 0A"), (512, 1809, "07 0A"), (0, 1297, "05 0A")],
)
def test_fingerprint_variant_uses_its_length_fields(fp_len: int, total: int, len_bytes: str) -> None:
    card = SAMPLE_CARDS["young"]
    frame = encode_response(SW3.SUCCESS, encode_read_data(card, fingerprint=bytes(fp_len)))
    assert len(frame) == total
    assert frame[5:7] == h(len_bytes)
    assert frame[14:16] == fp_len.to_bytes(2, "big")
    _, decoded = FrameDecoder().decode(frame)
    assert decoded is not None
    assert parse_read_data(decoded.data, fingerprint=True) == card


def test_length_fields_that_disagree_with_the_frame_are_refused() -> None:
    data = bytearray(encode_read_data(SAMPLE_CARDS["young"]))
    data[2:4] = (1000).to_bytes(2, "big")
    with pytest.raises(CardDataError, match="length"):
        parse_read_data(bytes(data))


def test_resident_fields_are_decoded() -> None:
    card = parse_text_block(encode_text_block(SAMPLE_CARDS["hui"]))
    assert card.card_type is CardType.RESIDENT
    assert card.name == "马丽娜"
    assert (card.sex.code, card.sex.label) == ("2", "女")
    assert card.nation is not None
    assert (card.nation.code, card.nation.label) == ("03", "回")
    assert card.birth == dt.date(1985, 3, 8)
    assert card.valid_to == dt.date(2030, 7, 1)
    assert card.birth_matches_id
    assert card.id_number_valid


def test_nul_padding_is_stripped_like_blanks() -> None:
    block = bytearray(encode_text_block(SAMPLE_CARDS["young"]))
    block[6:30] = bytes(24)  # name "李小明" then NULs instead of blanks
    assert parse_text_block(bytes(block)).name == "李小明"


def test_unknown_nation_code_does_not_crash() -> None:
    block = bytearray(encode_text_block(SAMPLE_CARDS["young"]))
    block[32:36] = "77".encode("utf-16-le")
    card = parse_text_block(bytes(block))
    assert card.nation is not None
    assert card.nation.code == "77"
    assert card.nation.label == "未知"


def test_permit_j_layout() -> None:
    card = SAMPLE_CARDS["permit_j"]
    block = encode_text_block(card)
    assert block[248:250] == "J".encode("utf-16-le")
    assert block[220:238] == "H12345678".encode("utf-16-le")
    assert block[238:242] == "01".encode("utf-16-le")
    decoded = parse_text_block(block, card.photo)
    assert decoded == card
    assert decoded.nation is None
    assert decoded.id_number.startswith("810000")


def test_foreigner_2017_layout_from_raw_offsets() -> None:
    block = bytearray(" ".encode("utf-16-le") * 128)

    def put(offset: int, text: str) -> None:
        raw = text.encode("utf-16-le")
        block[offset : offset + len(raw)] = raw

    put(0, "SMITH, JOHN")
    put(120, "1")
    put(122, "USA110079010101")
    put(152, "USA")
    put(158, "史密斯")
    put(188, "20170601")
    put(204, "20270601")
    put(220, "19790101")
    put(236, "10")
    put(240, "1100")
    put(248, "I")
    card = parse_text_block(bytes(block))
    assert card.card_type is CardType.FOREIGN_PERMANENT_2017
    assert (card.english_name, card.name, card.nationality) == ("SMITH, JOHN", "史密斯", "USA")
    assert card.id_number == "USA110079010101"
    assert card.birth == dt.date(1979, 1, 1)
    assert card.sex.label == "男"
    assert card.valid_to == dt.date(2027, 6, 1)
    assert card.authority == "1100"
    assert not card.id_number_valid  # old foreigner numbers are not GB 11643 numbers


def test_foreigner_2023_english_name_spans_two_fields() -> None:
    card = SAMPLE_CARDS["foreigner_y"]
    assert len(card.english_name) > 35
    block = encode_text_block(card)
    assert block[248:250] == "Y".encode("utf-16-le")
    assert block[52:122] == card.english_name[:35].encode("utf-16-le")
    assert parse_text_block(block, card.photo) == card


def test_unknown_card_type_flag_is_a_data_error() -> None:
    block = bytearray(encode_text_block(SAMPLE_CARDS["young"]))
    block[248:250] = "Q".encode("utf-16-le")
    with pytest.raises(CardDataError, match="card type"):
        parse_text_block(bytes(block))


def test_bad_date_is_a_data_error_without_personal_data() -> None:
    block = bytearray(encode_text_block(SAMPLE_CARDS["young"]))
    block[36:52] = "2001XX20".encode("utf-16-le")
    with pytest.raises(CardDataError) as info:
        parse_text_block(bytes(block))
    assert "2001" not in str(info.value)


def test_repr_shows_masked_data_only() -> None:
    card = SAMPLE_CARDS["elderly"]
    text = repr(card) + str(card)
    assert "王秀英" not in text
    assert card.id_number not in text
    assert "1101**********002X" in text


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
ALNUM = st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")


@given(
    name=st.text(CJK, min_size=1, max_size=15),
    address=st.text(CJK, max_size=35),
    authority=st.text(CJK, max_size=15),
    birth=st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31)),
    valid_to=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    nation=st.from_regex(r"[0-9]{2}", fullmatch=True),
    sex=st.sampled_from("0129"),
    number=st.text(ALNUM, min_size=18, max_size=18),
    photo=st.binary(min_size=1024, max_size=1024),
)
def test_text_block_round_trip(
    name: str,
    address: str,
    authority: str,
    birth: dt.date,
    valid_to: dt.date | None,
    nation: str,
    sex: str,
    number: str,
    photo: bytes,
) -> None:
    card = make_card(
        name,
        number,
        sex=sex,
        birth=birth,
        nation=nation,
        address=address,
        authority=authority,
        valid_to=valid_to,
        photo=photo,
    )
    block = encode_text_block(card)
    assert len(block) == 256
    assert parse_read_data(encode_read_data(card)) == card


def test_make_card_refuses_oversized_fields() -> None:
    card = make_card("张" * 16, "11010519491231002X")
    with pytest.raises(ValueError, match="name"):
        encode_text_block(card)


def test_sample_cards_cover_what_the_daemon_needs() -> None:
    cards = list(SAMPLE_CARDS.values())
    today = dt.date(2026, 1, 1)
    assert all(c.id_number_valid and c.birth_matches_id for c in cards)
    assert any(age_on(c.birth, today) >= 60 for c in cards)
    assert any(age_on(c.birth, today) < 30 for c in cards)
    assert any(c.valid_to is None for c in cards)
    assert any(c.card_type is CardType.HK_MO_TW_RESIDENCE for c in cards)
    assert len({c.id_number for c in cards}) == len(cards)


def test_idcard_is_frozen() -> None:
    card: IdCard = SAMPLE_CARDS["young"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "x"  # type: ignore[misc]
