"""Every frame and payload parser, fed arbitrary bytes: a value or the module's own error, never
another exception and never a hang (issue 10, proof). Bounded example counts keep the set fast."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from drivers import escpos, evalpad, hallframe, idcard, zigbee
from drivers.crc import crc16_modbus
from drivers.errors import FrameError
from drivers.modbus_sensor import ModbusSensor, OutOfRange, Reading, to_int16
from hallctl.commands import CommandError
from hallctl.mqtt.commands import json_depth, json_object

FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
TODAY = dt.date(2026, 11, 29)


def _drain_idcard(buf: bytes) -> list[idcard.Frame]:
    """Feed ``buf`` to the GA 467 decoder the way the driver does; it must always make progress."""
    decoder = idcard.FrameDecoder()
    frames: list[idcard.Frame] = []
    data = bytearray(buf)
    for _ in range(len(buf) + 2):  # each step consumes at least one byte or stops
        consumed, frame = decoder.decode(data)
        if consumed == 0:
            break
        assert 0 < consumed <= len(data)
        del data[:consumed]
        if frame is not None:
            frames.append(frame)
    else:
        raise AssertionError("decoder did not stop")
    return frames


def _check_card(card: idcard.IdCard) -> None:
    # Everything the daemon does with a card must work on whatever the chip said.
    assert isinstance(card.masked_name, str) and isinstance(card.masked_id, str)
    card.problem(TODAY)
    card.expired_on(TODAY)
    for text in (card.name, card.address, card.english_name, card.authority):
        assert text == idcard.clean_text(text)


@FUZZ
@given(st.binary(max_size=600))
def test_ga467_frame_decoder_on_arbitrary_bytes(buf: bytes) -> None:
    for frame in _drain_idcard(buf):
        assert frame.command == frame.body[:2]


@FUZZ
@given(st.binary(min_size=0, max_size=400))
def test_ga467_frames_with_arbitrary_bodies_parse_or_are_card_data_errors(body: bytes) -> None:
    framed = idcard.encode_frame(body) if 3 <= len(body) + 1 <= idcard.MAX_LEN else body
    for frame in _drain_idcard(b"\x00\xaa" + framed + idcard.PREAMBLE[:3]):
        try:
            card = idcard.parse_read_data(frame.data)
        except idcard.CardDataError:
            continue
        _check_card(card)


@FUZZ
@given(
    st.binary(min_size=idcard.TEXT_SIZE - 2, max_size=idcard.TEXT_SIZE - 2),
    st.sampled_from([" ", "J", "I", "Y", "X", "\x00"]),
    st.binary(max_size=64),
    st.booleans(),
)
def test_read_data_with_arbitrary_text_blocks(text: bytes, flag: str, photo: bytes, fingerprint: bool) -> None:
    block = text[: idcard.FLAG_OFFSET] + flag.encode("utf-16-le") + text[idcard.FLAG_OFFSET :]
    lengths = [len(block), len(photo)] + ([0] if fingerprint else [])
    data = b"".join(n.to_bytes(2, "big") for n in lengths) + block + photo
    try:
        card = idcard.parse_read_data(data, fingerprint=fingerprint)
    except idcard.CardDataError:
        return
    _check_card(card)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_read_data_on_arbitrary_bytes(data: bytes, fingerprint: bool) -> None:
    try:
        card = idcard.parse_read_data(data, fingerprint=fingerprint)
    except idcard.CardDataError:
        return
    _check_card(card)


@FUZZ
@given(st.fixed_dictionaries({n: st.integers(0, 255) for n in (1, 2, 3, 4)}))
def test_escpos_status_bytes_parse_or_are_frame_errors(replies: dict[int, int]) -> None:
    try:
        status = escpos.parse_status(replies)
    except FrameError:
        return
    assert status.state in ("ok", "degraded", "error")
    assert isinstance(status.reason, str) and status.ready == (status.state != "error")


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=12))
def test_hall_frame_decoder_on_arbitrary_chunks(chunks: list[bytes]) -> None:
    decoder = hallframe.FrameDecoder()
    total = 0
    for chunk in chunks:
        total += len(chunk)
        for frame in decoder.feed(chunk):
            assert len(frame.payload) <= decoder.max_payload
            assert frame.status is None or 0 <= frame.status <= 255
        assert decoder.pending <= total
    assert decoder.pending <= hallframe.HEADER_SIZE + decoder.max_payload + hallframe.CRC_SIZE


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=80), st.binary(max_size=20))
def test_hall_frames_with_arbitrary_payloads_round_trip(
    address: int, command: int, payload: bytes, noise: bytes
) -> None:
    head = struct.pack("<BBH", address, command, len(payload)) + payload
    frame = hallframe.SYNC + head + struct.pack("<H", crc16_modbus(head))
    got = hallframe.FrameDecoder().feed(noise.replace(b"\xaa", b"") + frame)
    assert got == [hallframe.Frame(address, command, payload)]
    evalpad.decode_start(payload)  # None or a pair, never an exception


@FUZZ
@given(st.binary(max_size=200))
def test_evalpad_start_payload(payload: bytes) -> None:
    got = evalpad.decode_start(payload)
    assert got is None or (isinstance(got[0], str) and isinstance(got[1], str))


SENSOR = ModbusSensor("fuzz", "/dev/null", on_reading=lambda r: None)


@FUZZ
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_modbus_registers_decode_or_are_out_of_range(temperature: int, humidity: int) -> None:
    assert -0x8000 <= to_int16(temperature) <= 0x7FFF
    try:
        reading = SENSOR.decode(temperature, humidity)
    except OutOfRange:
        return
    assert isinstance(reading, Reading)


ZIGBEE_HOSTILE = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n: b"[" * n, st.integers(0, 200_000)),
    st.builds(lambda n: b'{"temperature": ' + b"9" * n + b"}", st.integers(1, 6000)),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=12,
    ).map(lambda v: repr(v).encode()),
    st.dictionaries(
        st.sampled_from(["temperature", "humidity", "battery", "linkquality", "state"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    ).map(lambda d: json.dumps(d, allow_nan=True).encode()),
)


@FUZZ
@given(ZIGBEE_HOSTILE)
def test_zigbee_payloads_parse_or_are_payload_errors(payload: bytes) -> None:
    with contextlib.suppress(zigbee.PayloadError):
        assert isinstance(zigbee.parse_state(payload), zigbee.ZigbeeReading)
    with contextlib.suppress(zigbee.PayloadError):
        assert zigbee.parse_availability(payload) in (True, False)


@FUZZ
@given(ZIGBEE_HOSTILE)
@example(b'"\\' * 32000)  # unterminated strings from every quote: quadratic with a naive string regex
@example(b"[" * 100_000)
@example(b"[1]," * 16000)
def test_mqtt_command_payloads_parse_or_are_command_errors(payload: bytes) -> None:
    assert json_depth(payload) >= 0
    try:
        body = json_object(payload, max_bytes=65536)
    except CommandError as exc:
        assert exc.code in ("malformed_json", "payload_too_large")
        return
    assert isinstance(body, dict)
