"""Fixtures for the bundle builder's tests: profiles re-read per test, the o200k encoding.

The LEADCTX_* environment is cleaned for every test by the root ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tiktoken

from leadctx_bundle import environment_profiles, load_encoding


@pytest.fixture(autouse=True)
def _fresh_profiles() -> Iterator[None]:
    """Profiles are re-read from the environment each test sets."""
    environment_profiles.cache_clear()
    yield
    environment_profiles.cache_clear()


@pytest.fixture(scope="session")
def o200k() -> tiktoken.Encoding:
    """The offline o200k_base encoding (built once per test session)."""
    return load_encoding("o200k_base")
