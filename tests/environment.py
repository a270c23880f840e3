"""The one rule for a test's environment: no ``LEADCTX_*`` of the shell (or of CI) leaks in."""

from __future__ import annotations

import os

import pytest


def clear_leadctx_variables(patch: pytest.MonkeyPatch) -> None:
    """Unset every ``LEADCTX_*`` variable for as long as ``patch`` is active.

    Args:
        patch: The monkeypatch (a test's fixture, or a ``MonkeyPatch.context()`` of a
            module-scoped fixture, which starts before the per-test clean-up runs).
    """
    for name in list(os.environ):
        if name.upper().startswith("LEADCTX_"):
            patch.delenv(name)
