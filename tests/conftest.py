"""Fixtures shared by every test: a clean OpenFeature API and a clean LEADCTX_ environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from tests.environment import clear_leadctx_variables

# CI explores the same examples every run, so a red build always reproduces; local runs keep
# exploring new ones (and hypothesis' database replays any failure they find).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _clean_openfeature() -> Iterator[None]:
    """Each test starts and ends with no providers, hooks or context registered."""
    yield
    api.clear_providers()
    api.clear_hooks()
    api.set_evaluation_context(EvaluationContext())


@pytest.fixture(autouse=True)
def _clean_leadctx_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may export LEADCTX_*; tests see only what they set themselves."""
    clear_leadctx_variables(monkeypatch)
