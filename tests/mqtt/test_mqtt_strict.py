"""Every command's numbers and booleans: strict in a body (MQTT payload, HTTP JSON), lax in a path or topic.

``{"target": "25"}`` must be refused like the zigbee path refuses a string temperature:
a string where a number belongs is a misconfigured client, and guessing would act on it.
Path and topic parameters are strings by nature (``cmd/window/3/call_next``).
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest

from hallctl.commands import COMMANDS, CommandError, parse_args

SCALARS = {int: "1", float: "1.5", bool: "true"}


def scalar_types(annotation: Any) -> set[type]:
    if annotation in SCALARS:
        return {annotation}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {t for arg in typing.get_args(annotation) for t in scalar_types(arg)}
    return set()


def body_fields() -> list[tuple[str, str, type]]:
    out = []
    for cmd in COMMANDS.values():
        params = set(cmd.topic_params) | set(cmd.http.params)
        for name, field in cmd.args.model_fields.items():
            if name in params:
                continue
            for t in scalar_types(field.annotation):
                out.append((cmd.name, name, t))
    return out


def errors_at(command: str, raw: dict[str, Any], field: str) -> list[dict[str, Any]]:
    try:
        parse_args(COMMANDS[command], raw)
    except CommandError as exc:
        return [e for e in exc.errors if e["loc"][:1] == [field]]
    return []


def test_the_table_has_body_numbers_to_check() -> None:
    found = {(c, f) for c, f, _ in body_fields()}
    assert {("climate.set", "target"), ("window.transfer", "to_window"), ("ticket.evaluate", "level")} <= found


@pytest.mark.parametrize(("command", "field", "kind"), body_fields(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_string_is_never_coerced_into_a_body_number(command: str, field: str, kind: type) -> None:
    errs = errors_at(command, {field: SCALARS[kind]}, field)
    assert errs, f"{command}: {field}={SCALARS[kind]!r} was accepted"


def test_path_and_topic_parameters_still_arrive_as_strings() -> None:
    for cmd in COMMANDS.values():
        for param in set(cmd.topic_params) | set(cmd.http.params):
            # A string of the parameter's own form: a path segment or topic level is always text.
            value = {"window": "3", "day": "2026-11-30", "alert_id": "7", "case_id": "7", "action": "note"}.get(
                param, "abc"
            )
            assert not errors_at(cmd.name, {param: value}, param), (cmd.name, param)


def test_climate_accepts_numbers_and_refuses_the_string_25() -> None:
    args = parse_args(COMMANDS["climate.set"], {"zone": "floor1", "target": 25})
    assert args.model_dump()["target"] == 25.0
    assert errors_at("climate.set", {"zone": "floor1", "target": "25"}, "target")
    assert errors_at("climate.set", {"zone": "floor1", "target": True}, "target")
