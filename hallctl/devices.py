"""Devices component (placeholder until the driver integration lands): returns no component."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hallctl.app import Component, Hall


def devices_component(hall: Hall) -> Component | None:
    return None
