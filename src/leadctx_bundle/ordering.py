"""The order in which each section offers its items to the budget. Pure functions.

* Knowledge assets: the caller's rank, lowest first; unranked assets after ranked ones; ties
  in input order.
* Lead memory: newest first (``created_at`` descending); ties in input order. Rendered in the
  same order.
* Thread: most recent first (``sent_at`` descending; ties: later in the input first), so the
  budget keeps the latest stretch of the conversation. The builder renders the kept messages
  oldest first, the order in which the conversation reads.

Duplicate ids (assets, memory) keep the first occurrence *in this order* (the best-ranked or
newest copy); the others count as dropped. Thread messages have no id and are never merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from leadctx_bundle.models import KnowledgeAsset, LeadMemoryEntry, ThreadMessage

__all__ = ["assets_in_rank_order", "memory_newest_first", "thread_most_recent_first"]


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_T = TypeVar("_T", bound=_HasId)


def _unique(items: Iterable[_T]) -> Iterator[_T]:
    # Lazy: a build stops pulling items once its section is full.
    seen: set[str] = set()
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            yield item


def assets_in_rank_order(assets: Sequence[KnowledgeAsset]) -> Iterator[KnowledgeAsset]:
    """Assets by rank (unranked last, ties in input order), duplicate ids removed, lazily."""
    # sorted() is stable: equal keys keep input order.
    ordered = sorted(assets, key=lambda a: (a.rank is None, 0 if a.rank is None else a.rank))
    return _unique(ordered)


def memory_newest_first(entries: Sequence[LeadMemoryEntry]) -> Iterator[LeadMemoryEntry]:
    """Entries newest first (ties in input order), duplicate ids removed, lazily."""
    ordered = sorted(entries, key=lambda e: e.created_at, reverse=True)  # stable, even reversed
    return _unique(ordered)


def thread_most_recent_first(messages: Sequence[ThreadMessage]) -> Iterator[ThreadMessage]:
    """Messages most recent first; of two sent at the same time, the later in the input first."""
    ordered = sorted(enumerate(messages), key=lambda p: (p[1].sent_at, p[0]), reverse=True)
    return (message for _, message in ordered)
