"""The AA 55 frame pinned by the literal examples of docs/protocols.md 3.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import hallframe
from drivers.crc import crc16_arc, crc16_modbus
from drivers.hallframe import Frame, FrameDecoder
from drivers.led import HallFrameProtocol, TextRefused

SHOW_A001_ON_3 = bytes.fromhex("AA 55 03 01 11 00 00 00 41 30 30 31 C7 EB B5 BD 33 BA C5 B4 B0 BF DA F0 3F")
ACK_FROM_3 = bytes.fromhex("AA 55 03 81 01 00 00 19 FC")
STATUS_QUERY_3 = bytes.fromhex("AA 55 03 10 00 00 01 A5")


def test_crc16_known_check_values() -> None:
    """Catalogue check values ("123456789") and the Modbus read-temperature request."""
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_arc(b"123456789") == 0xBB3D
    request = bytes.fromhex("01 04 00 01 00 01")
    assert crc16_modbus(request).to_bytes(2, "little") == bytes.fromhex("60 0A")
    assert crc16_modbus(bytes.fromhex("01 04 02 01 31")).to_bytes(2, "little") == bytes.fromhex("79 74")


def test_show_text_example_frame_byte_for_byte() -> None:
    request = HallFrameProtocol().encode_text(3, "A001请到3号窗口", line=0, effect="static")
    assert request.data == SHOW_A001_ON_3
    assert request.expects_reply


def test_ack_and_status_query_examples_byte_for_byte() -> None:
    assert hallframe.reply(3, 0x01, hallframe.STATUS_OK) == ACK_FROM_3
    assert HallFrameProtocol().encode_status(3).data == STATUS_QUERY_3


def test_decoding_the_examples() -> None:
    frames = FrameDecoder().feed(SHOW_A001_ON_3 + ACK_FROM_3 + STATUS_QUERY_3)
    assert frames == [
        Frame(3, 0x01, b"\x00\x00" + "A001请到3号窗口".encode("gb18030")),
        Frame(3, 0x81, b"\x00"),
        Frame(3, 0x10, b""),
    ]
    reply = HallFrameProtocol().parse_reply(frames[1])
    assert reply is not None and reply.ok and reply.command == 0x01 and reply.address == 3
    assert HallFrameProtocol().parse_reply(frames[0]) is None  # our own request echoed back


def test_bad_crc_is_dropped_and_counted_then_next_frame_decodes() -> None:
    corrupt = bytearray(ACK_FROM_3)
    corrupt[-1] ^= 0xFF
    decoder = FrameDecoder()
    assert decoder.feed(bytes(corrupt)) == []
    assert decoder.bad_crc == 1
    assert decoder.feed(ACK_FROM_3) == [Frame(3, 0x81, b"\x00")]


def test_oversized_length_is_rejected_without_waiting_for_it() -> None:
    decoder = FrameDecoder(max_payload=64)
    assert decoder.feed(b"\xaa\x55\x03\x01\xff\xff" + ACK_FROM_3) == [Frame(3, 0x81, b"\x00")]
    assert decoder.bad_length == 1


def test_frame_split_byte_by_byte() -> None:
    decoder = FrameDecoder()
    got: list[Frame] = []
    for byte in SHOW_A001_ON_3:
        got += decoder.feed(bytes([byte]))
    assert len(got) == 1 and got[0].command == 0x01


def test_broadcast_expects_no_reply_and_reserved_address_refused() -> None:
    protocol = HallFrameProtocol()
    assert not protocol.encode_clear(0).expects_reply
    with pytest.raises(ValueError):
        protocol.encode_clear(0xFF)


def test_text_refused_before_encoding_when_too_long() -> None:
    protocol = HallFrameProtocol(max_text_bytes=64)
    protocol.encode_text(1, "请" * 32)  # exactly 64 bytes is fine
    with pytest.raises(TextRefused) as info:
        protocol.encode_text(1, "请" * 33)
    assert info.value.reason == "text_too_long"


def test_call_payload_is_ticket_nul_window() -> None:
    data = HallFrameProtocol().encode_call(3, "A008", 12).data
    assert FrameDecoder().feed(data) == [Frame(3, 0x04, b"A008\x00\x0c")]
    with pytest.raises(ValueError):
        HallFrameProtocol().encode_call(3, "A 08", 12)


@given(st.binary(max_size=600))
def test_decoder_never_raises_on_garbage(data: bytes) -> None:
    decoder = FrameDecoder()
    for frame in decoder.feed(data):
        # Whatever it accepts must be a frame that re-encodes to bytes found in the input.
        assert frame.encode() in data
    assert decoder.pending <= hallframe.HEADER_SIZE + hallframe.MAX_PAYLOAD + hallframe.CRC_SIZE


frames_st = st.builds(
    Frame,
    address=st.integers(0, 255),
    command=st.integers(0, 255),
    payload=st.binary(max_size=80),
)


@given(st.binary(max_size=300), frames_st, st.binary(max_size=300))
def test_valid_frame_recovered_from_surrounding_garbage(before: bytes, frame: Frame, after: bytes) -> None:
    """Garbage may even fake a header that swallows the frame; hunting must still find it."""
    decoder = FrameDecoder()
    got = decoder.feed(before + frame.encode() + after)
    # Flush: enough non-sync filler to complete any fake frame that is still waiting.
    got += decoder.feed(b"\x00" * (hallframe.MAX_PAYLOAD + 8))
    assert frame in got


@given(st.lists(frames_st, max_size=5), st.integers(1, 7))
def test_round_trip_in_any_chunking(frames: list[Frame], chunk: int) -> None:
    stream = b"".join(f.encode() for f in frames)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(0, len(stream), chunk):
        got += decoder.feed(stream[i : i + chunk])
    assert got == frames
    assert decoder.bad_frames == 0 and decoder.garbage_bytes == 0
