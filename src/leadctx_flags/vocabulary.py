"""The rollout's vocabulary, defined once: pipelines, the path a call took, fallback reasons.

The control plane owns the rollout, so its words live here; the bundle's gate, the records it
writes (``metadata.leadctx``), the telemetry and the guardrails all import them from this
module. Each is a ``StrEnum``: its members compare equal to, hash like, and serialise as their
plain string values, which are the contract (JSON keys, span attributes, SQL literals).
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Final

__all__ = ["FALLBACK_REASONS", "PATHS", "PIPELINES", "FallbackReason", "Pipeline", "ResolutionPath"]


@unique
class Pipeline(StrEnum):
    """A pipeline that asks for LLM context."""

    DRAFT = "draft"
    """AI drafts of replies to leads."""
    OVERSEER = "overseer"
    """The meeting overseer that gates scheduling replies (approve / revise)."""
    AUTO_SEND = "auto_send"
    """The auto-send evaluator: sends a draft when its confidence clears a threshold."""
    PROPOSED_TIMES = "proposed_times"
    """The parser of proposed meeting times that triggers bookings."""


@unique
class ResolutionPath(StrEnum):
    """The path one context resolution took."""

    SHARED = "shared"
    """The flag was on and the shared bundle was built."""
    LEGACY = "legacy"
    """The flag was off (or could not be evaluated): the pipeline's own assembly."""
    FALLBACK = "fallback"
    """The flag was on but the shared build failed: the pipeline's own assembly."""


@unique
class FallbackReason(StrEnum):
    """Why a shared build fell back to the pipeline's own assembly."""

    SOURCE_ERROR = "source_error"
    """A context source raised (a database read error, a network error)."""
    INVALID_DATA = "invalid_data"
    """A source returned records that do not validate (unexpected nulls, wrong types)."""
    BUDGET_ERROR = "budget_error"
    """The budget arithmetic or the profile could not be applied."""
    TOKENIZER_ERROR = "tokenizer_error"
    """The tokenizer could not be loaded or failed on the input."""
    TIMEOUT = "timeout"
    """The shared path did not finish within its deadline."""
    INTERNAL_ERROR = "internal_error"
    """Anything else: a bug, reported by exception type only."""


PIPELINES: Final[tuple[Pipeline, ...]] = tuple(Pipeline)
PATHS: Final[tuple[ResolutionPath, ...]] = tuple(ResolutionPath)
FALLBACK_REASONS: Final[tuple[FallbackReason, ...]] = tuple(FallbackReason)
