"""Fixtures for the flags tests: a real overrides server (see ``overrides_server.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.flags.overrides_server import OverridesServer


@pytest.fixture
def overrides_server() -> Iterator[OverridesServer]:
    """An overrides server on 127.0.0.1, stopped when the test ends."""
    with OverridesServer() as server:
        yield server
