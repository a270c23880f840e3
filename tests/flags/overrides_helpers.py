"""Builders for overrides documents, shared by every flags test, and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable

from leadctx_flags import SHARED_BUNDLE_FLAG, OverridesDocument


def document(revision: int = 1, **flag: object) -> OverridesDocument:
    """A document at ``revision`` whose ``shared_bundle.enabled`` entry has the fields ``flag``."""
    return OverridesDocument.model_validate(
        {
            "schema": "leadctx.overrides/v1",
            "revision": revision,
            "updated_by": "tests",
            "flags": {SHARED_BUNDLE_FLAG: flag},
        }
    )


def wire(revision: int, **flag: object) -> bytes:
    """``document(revision, **flag)`` as the bytes a source serves."""
    return document(revision, **flag).to_json().encode()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> float:
    """Seconds until ``condition()`` held; raises AssertionError after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start
