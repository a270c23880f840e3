"""The flags this package resolves."""

from __future__ import annotations

__all__ = ["KNOWN_FLAGS", "SHARED_BUNDLE_FLAG"]

SHARED_BUNDLE_FLAG = "shared_bundle.enabled"
"""Is the shared LeadContextBundle on for this client? Boolean, off by default."""

KNOWN_FLAGS = frozenset({SHARED_BUNDLE_FLAG})
