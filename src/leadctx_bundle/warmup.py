"""``warm_up``: a process's one-time work, done at start-up instead of inside a call's deadline.

The first build in a process constructs the tokenizer of each encoding it uses (about 0.3 s
for ``o200k_base`` on a quiet host, seconds on a busy one), pydantic's validators and the
token caches' structures. A gated call that pays for them runs against its pipeline's deadline
and, on a busy host, falls back to ``legacy()`` with reason ``timeout``: safe, but every new
worker's first drafts miss the shared bundle and the fallback rate of a fresh deployment says
nothing about the bundle. ``warm_up()`` does that work when the caller chooses, like opening a
database pool before serving.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from leadctx_bundle.builder import build_bundle, environment_profiles
from leadctx_bundle.profiles import BundleProfile

__all__ = ["warm_up"]

# One item per section: enough to run validation, every renderer and the packer, no content
# of anyone's.
_SAMPLE = {
    "client_id": "warm-up",
    "lead_id": "warm-up",
    "knowledge_assets": [{"id": "a", "title": "Warm-up", "content": "warm-up", "rank": 1}],
    "lead_memory": [{"id": "m", "content": "warm-up", "created_at": "2026-01-01T00:00:00Z"}],
    "thread": [{"role": "lead", "content": "warm-up", "sent_at": "2026-01-01T00:00:00Z"}],
}


def warm_up(profiles: Mapping[str, BundleProfile] | None = None) -> float:
    """Build, now, what the first shared call would otherwise build inside its deadline.

    Runs one small build per pipeline with each pipeline's profile, so every encoding in use
    is constructed and every validator is ready. Call it once at start-up, after the
    environment is set (``LEADCTX_BUNDLE_*``) and before serving; calling it again is cheap
    (a few small builds on warm caches). It reads no source and records no telemetry.

    Args:
        profiles: The profiles to warm, by pipeline; ``None`` takes ``environment_profiles()``,
            what ``resolve_context`` uses.

    Returns:
        The seconds it took (log it, or compare it with the shortest deadline).

    Raises:
        ConfigurationError: ``profiles`` is ``None`` and the environment's profiles are
            invalid (the same error the first gated call would record as a fallback).
        EncodingDataError: An encoding cannot be built from the shipped data.
    """
    started = time.perf_counter()
    chosen = environment_profiles() if profiles is None else profiles
    for pipeline, profile in chosen.items():
        build_bundle({**_SAMPLE, "pipeline": pipeline}, profile=profile)
    return time.perf_counter() - started
