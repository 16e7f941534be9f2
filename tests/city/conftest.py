"""Fixtures for the city tests: one PostgreSQL per session (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.city.pg_helpers import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    yield pg
    pg.cleanup()


@pytest.fixture
def pg_dsn(postgres: Postgres) -> str:
    return postgres.new_database()
