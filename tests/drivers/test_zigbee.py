"""zigbee2mqtt payload parsing: the examples from docs/protocols.md §6 and arbitrary bytes."""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError
from drivers.sim.zigbee import availability_legacy, availability_v2, z2m_payload
from drivers.zigbee import (
    PayloadError,
    ZigbeeReading,
    availability_topic,
    parse_availability,
    parse_state,
    state_topic,
)

AQARA = b'{"battery":100,"humidity":54.6,"linkquality":120,"pressure":1008.2,"temperature":23.5,"voltage":3005}'


def test_aqara_example_parses() -> None:
    """The documented WSDCGQ11LM message gives all four values; extra keys are ignored."""
    assert parse_state(AQARA) == ZigbeeReading(temperature=23.5, humidity=54.6, battery=100, linkquality=120)


def test_missing_keys_are_none() -> None:
    """An SNZB-02 report without temperature is valid; the reading just lacks it."""
    assert parse_state(b'{"humidity":48.2,"linkquality":87}') == ZigbeeReading(humidity=48.2, linkquality=87)
    assert parse_state(b"{}") == ZigbeeReading()
    assert parse_state(b'{"temperature":null}') == ZigbeeReading()


def test_negative_and_integer_values() -> None:
    reading = parse_state(b'{"temperature":-5,"humidity":100,"battery":97.5}')
    assert reading == ZigbeeReading(temperature=-5.0, humidity=100.0, battery=97.5)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"temperature":23.5', "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1,2]", "JSON object"),
        (b'"online"', "JSON object"),
        (b'{"temperature":"23.5"}', "'temperature' must be a number, got str"),
        (b'{"humidity":true}', "'humidity' must be a number, got bool"),
        (b'{"temperature":NaN}', "'temperature' must be finite"),
        (b'{"temperature":1e999}', "'temperature' must be finite"),
        (b'{"linkquality":120.5}', "'linkquality' must be a whole number"),
        (b'{"battery":' + b"9" * 400 + b"}", "'battery' is out of range"),
    ],
)
def test_malformed_state_is_a_frame_error_with_clear_message(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message) as info:
        parse_state(payload)
    assert isinstance(info.value, FrameError)
    assert info.value.code == "bad_payload"


@given(st.binary(max_size=300))
def test_parse_state_raises_only_frame_error_on_any_bytes(payload: bytes) -> None:
    with contextlib.suppress(FrameError):
        assert isinstance(parse_state(payload), ZigbeeReading)


# A fixed alphabet: full-Unicode text makes Hypothesis build its character table
# on first use (about a second), which fails the too_slow health check on a fresh CI.
_text = st.text(alphabet=string.printable + "温度湿度°", max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["temperature", "humidity", "battery", "linkquality", "x"]),
        json_values,
    )
)
def test_parse_state_raises_only_frame_error_on_any_json_object(doc: dict[str, object]) -> None:
    """Arbitrary bytes rarely form JSON; this reaches the type checks."""
    with contextlib.suppress(FrameError):
        assert isinstance(parse_state(json.dumps(doc).encode()), ZigbeeReading)


@given(
    st.one_of(st.none(), st.floats(-40, 125)),
    st.one_of(st.none(), st.floats(0, 100)),
    st.integers(0, 100),
    st.integers(0, 255),
)
def test_simulator_payload_round_trips(
    temperature: float | None, humidity: float | None, battery: int, linkquality: int
) -> None:
    assert parse_state(z2m_payload(temperature, humidity, battery, linkquality)) == ZigbeeReading(
        temperature, humidity, battery, linkquality
    )


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b'{"state":"online"}', True),
        (b'{"state":"offline"}', False),
        (b"online", True),
        (b"offline", False),
        (b"online\n", True),
        (availability_v2(True), True),
        (availability_v2(False), False),
        (availability_legacy(True), True),
        (availability_legacy(False), False),
    ],
)
def test_availability_both_dialects(payload: bytes, online: bool) -> None:
    """zigbee2mqtt 2.x JSON and the 1.x bare word both work."""
    assert parse_availability(payload) is online


@pytest.mark.parametrize(
    "payload", [b"", b"ONLINE", b"up", b'{"state":"unknown"}', b'{"status":"online"}', b"[]", b"\xff"]
)
def test_bad_availability_is_an_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_availability(payload)


@given(st.binary(max_size=100))
def test_parse_availability_raises_only_frame_error(payload: bytes) -> None:
    with contextlib.suppress(FrameError):
        assert isinstance(parse_availability(payload), bool)


def test_topics() -> None:
    """Friendly names may contain '/', and the base topic is configurable."""
    assert state_topic("zigbee2mqtt", "hall/floor1/temp") == "zigbee2mqtt/hall/floor1/temp"
    assert availability_topic("z2m/", "lobby") == "z2m/lobby/availability"
