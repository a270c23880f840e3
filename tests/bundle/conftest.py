"""Fixtures for the bundle builder's tests: a clean environment and small input factories."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import tiktoken

from leadctx_bundle import environment_profiles, load_encoding


@pytest.fixture(autouse=True)
def _clean_bundle_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests see only the LEADCTX_* variables they set, and re-read profiles each time."""
    for name in list(os.environ):
        if name.upper().startswith("LEADCTX_"):
            monkeypatch.delenv(name)
    environment_profiles.cache_clear()
    yield
    environment_profiles.cache_clear()


@pytest.fixture(scope="session")
def o200k() -> tiktoken.Encoding:
    """The offline o200k_base encoding (built once per test session)."""
    return load_encoding("o200k_base")
