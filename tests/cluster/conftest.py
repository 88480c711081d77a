"""A private PostgreSQL cluster shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import postgres_server


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url
