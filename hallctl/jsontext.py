"""Compact JSON text (UTF-8 kept as is) from encoders built once, for the daemon's hot paths.

Why: ``json.dumps`` with any argument other than its defaults builds a ``JSONEncoder`` and
then its C encoder on every call, about a third of each encode's time. A kiosk ticket is
encoded four to six times (the answer, its idempotency record, the event-log row, the
events' wire text: issue 12's profile), so the encoders are built here once and shared.
The text is byte for byte what ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``
gives for the same object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

_make_c_encoder: Callable[..., Callable[[Any, int], Any]] | None = getattr(_encoder, "c_make_encoder", None)


def _default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _build(allow_nan: bool) -> Callable[[Any], str]:
    if _make_c_encoder is None:  # an interpreter without the C accelerator: the same text, slower
        enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
        return enc.encode
    # No circular-reference check (markers None): the daemon never builds cyclic documents, and
    # one would still end in RecursionError, not in a hang.
    c_encoder = _make_c_encoder(None, _default, _encoder.encode_basestring, None, ":", ",", False, False, allow_nan)

    def dumps(obj: Any) -> str:
        return "".join(c_encoder(obj, 0))

    return dumps


# NaN and infinities as JavaScript's literals (json.dumps' default): for stored and internal text.
dumps: Callable[[Any], str] = _build(allow_nan=True)
# NaN and infinities raise ValueError: for what goes to clients (JSON has no such values;
# Starlette's JSONResponse refuses them the same way).
dumps_strict: Callable[[Any], str] = _build(allow_nan=False)
