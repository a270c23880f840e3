"""Counting the demo's calls: by period, client and path, and what each fallback returned."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from leadctx.demo.world import CLIENTS, Lead
from leadctx_bundle.gate import ContextResolution
from leadctx_flags.vocabulary import ResolutionPath

__all__ = ["CallTally"]


@dataclass
class CallTally:
    """Counts of the calls, by period, client and path, and what the fallbacks returned.

    Args:
        calls: Calls by period, client and path.
        fallback_pipelines: Fallbacks by pipeline.
        fallback_reasons: Fallbacks by reason.
        fallback_errors: Fallbacks by the class of the exception behind them.
        fallback_legacy_text: Fallbacks whose context was exactly the lead's legacy text.
        shared_assets_truncated: Shared calls with a truncated knowledge asset.
        shared_memory_truncated: Shared calls with a truncated memory entry.
        shared_tokens: Tokens of every shared bundle, added up.
    """

    calls: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter))
    )
    fallback_pipelines: Counter[str] = field(default_factory=Counter)
    fallback_reasons: Counter[str] = field(default_factory=Counter)
    fallback_errors: Counter[str] = field(default_factory=Counter)
    fallback_legacy_text: int = 0
    shared_assets_truncated: int = 0
    shared_memory_truncated: int = 0
    shared_tokens: int = 0

    def add(self, period: str, lead: Lead, resolution: ContextResolution) -> None:
        """Count one call of ``lead`` in ``period``."""
        path = resolution.path
        self.calls[period][lead.client_id][path.value] += 1
        if path is ResolutionPath.SHARED and resolution.stats is not None:
            sections = resolution.stats.sections
            self.shared_tokens += resolution.stats.tokens_total
            self.shared_assets_truncated += bool(sections["knowledge_assets"].items_truncated)
            self.shared_memory_truncated += bool(sections["lead_memory"].items_truncated)
        if path is ResolutionPath.FALLBACK:
            self.fallback_pipelines[str(resolution.pipeline)] += 1
            self.fallback_reasons[str(resolution.fallback_reason)] += 1
            self.fallback_errors[str(resolution.error_type)] += 1
            # The pipeline still got its context: today's assembly, exactly.
            self.fallback_legacy_text += resolution.text == lead.legacy_text() != ""

    def period(self, period: str) -> dict[str, dict[str, int]]:
        """Calls of ``period`` by client and path."""
        return {client: dict(sorted(self.calls[period][client].items())) for client in CLIENTS}

    def fallback(self) -> dict[str, Any]:
        """The fallbacks: counts by pipeline, reason and error class."""
        return {
            "calls": sum(self.fallback_pipelines.values()),
            "legacy_text": self.fallback_legacy_text,
            "by_pipeline": dict(sorted(self.fallback_pipelines.items())),
            "reasons": dict(sorted(self.fallback_reasons.items())),
            "error_types": dict(sorted(self.fallback_errors.items())),
        }
