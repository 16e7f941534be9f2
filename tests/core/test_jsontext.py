"""The shared JSON encoders write what json.dumps writes, so no client, stored row or topic sees a change."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hallctl import jsontext

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text() | st.integers(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_text_is_json_dumps_compact_with_utf8_kept(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@given(JSON_VALUES)
def test_strict_text_is_the_same_or_refuses_what_json_has_no_literal_for(value: Any) -> None:
    try:
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        with pytest.raises(ValueError):
            jsontext.dumps_strict(value)
    else:
        assert jsontext.dumps_strict(value) == expected


def test_an_unknown_type_raises_type_error_as_json_dumps_does() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"at": object()})
    with pytest.raises(ValueError):
        jsontext.dumps_strict([math.inf])
