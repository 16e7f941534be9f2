"""Fixtures for the MQTT tests (helpers live in ``mqtt_helpers``).

Mosquitto is required: without it these tests fail (they never skip), because a
green run that tested nothing would hide a broken integration bus.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.mqtt.mqtt_helpers import Mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def hall_id() -> str:
    """A hall id of its own per test, so retained messages never leak between tests."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(autouse=True)
async def no_tasks_left_behind() -> AsyncIterator[None]:
    """A test that leaves a task running fails, naming the task (pymodbus's health check)."""
    yield
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for _ in range(50):  # give cancelled tasks their last loop iterations to finish
        if not left:
            break
        await asyncio.sleep(0)
        left = [t for t in left if not t.done()]
    assert not left, f"tasks left behind: {[t.get_name() for t in left]}"
