"""Where a bundle's rows come from: the ``ContextSource`` protocol.

A source is whatever reads the application's database (or a cache, or a test fixture). It may
fail: a raised exception or a row with a null where content belongs is exactly what the
gate's fallback to the legacy context exists for. ``load_bundle_input`` calls a source and
validates what it returns, so that a bad row is a ``BundleInputError`` naming its field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from leadctx_bundle.models import (
    BudgetOverrides,
    BundleInput,
    BundleRequest,
    KnowledgeAsset,
    LeadMemoryEntry,
    ThreadMessage,
)
from leadctx_bundle.validation import parse_bundle_input

__all__ = ["ContextSource", "StaticContextSource", "load_bundle_input"]

Row = Mapping[str, Any]


@runtime_checkable
class ContextSource(Protocol):
    """Loads the rows of a bundle. Each method may return models or plain mappings."""

    def knowledge_assets(self, client_id: str) -> Iterable[KnowledgeAsset | Row]:
        """The client's knowledge assets (``id``, ``title``, ``content``, optional ``rank``)."""
        ...

    def lead_memory(self, lead_id: str) -> Iterable[LeadMemoryEntry | Row]:
        """The lead's memory entries (``id``, ``content``, ``created_at``)."""
        ...

    def thread(self, lead_id: str) -> Iterable[ThreadMessage | Row]:
        """The lead's thread (``role``, ``content``, ``sent_at``); may be empty."""
        ...


@dataclass(frozen=True, slots=True)
class StaticContextSource:
    """A ``ContextSource`` over fixed rows, for tests, examples and the demo.

    Args:
        assets: Knowledge assets per client id.
        memory: Memory entries per lead id.
        threads: Thread messages per lead id.
    """

    assets: Mapping[str, Sequence[KnowledgeAsset | Row]] = field(default_factory=dict)
    memory: Mapping[str, Sequence[LeadMemoryEntry | Row]] = field(default_factory=dict)
    threads: Mapping[str, Sequence[ThreadMessage | Row]] = field(default_factory=dict)

    def knowledge_assets(self, client_id: str) -> Iterable[KnowledgeAsset | Row]:
        """The assets given for ``client_id`` (none if unknown)."""
        return self.assets.get(client_id, ())

    def lead_memory(self, lead_id: str) -> Iterable[LeadMemoryEntry | Row]:
        """The memory given for ``lead_id`` (none if unknown)."""
        return self.memory.get(lead_id, ())

    def thread(self, lead_id: str) -> Iterable[ThreadMessage | Row]:
        """The thread given for ``lead_id`` (none if unknown)."""
        return self.threads.get(lead_id, ())


def load_bundle_input(
    source: ContextSource, request: BundleRequest, budgets: BudgetOverrides | None = None
) -> BundleInput:
    """Read ``request``'s rows from ``source`` and validate them into a ``BundleInput``.

    Args:
        source: Where the rows come from.
        request: Client, lead and pipeline.
        budgets: Optional per-call budget overrides.

    Raises:
        BundleInputError: A row does not validate (``knowledge_assets[3].content: ...``).
        Exception: Whatever ``source`` raises, unchanged, for the caller's fallback.
    """
    return parse_bundle_input(
        {
            **request.model_dump(),
            "knowledge_assets": list(source.knowledge_assets(request.client_id)),
            "lead_memory": list(source.lead_memory(request.lead_id)),
            "thread": list(source.thread(request.lead_id)),
            "budgets": budgets,
        }
    )
