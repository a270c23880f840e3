"""Where a bundle's rows come from: the ``ContextSource`` protocol.

A source is whatever reads the application's database (or a cache, or a test fixture). It may
fail: a raised exception or a row with a null where content belongs is exactly what the
gate's fallback to the legacy context exists for. ``load_bundle_input`` calls a source and
validates what it returns, so that a bad row is a ``BundleInputError`` naming its field.

What a section's method returns must be an iterable of rows (a list, a tuple, a generator, a
lazy cursor). ``rows_of`` is the one rule for the rest: ``None``, a string, bytes, a mapping,
a number or an awaitable where rows belong is a ``BundleInputError`` naming the section (the
gate's ``invalid_data``); an exception raised while iterating is the source's own (its
``source_error``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from leadctx_bundle.errors import BundleInputError
from leadctx_bundle.models import (
    BudgetOverrides,
    BundleInput,
    BundleRequest,
    KnowledgeAsset,
    LeadMemoryEntry,
    ThreadMessage,
)
from leadctx_bundle.validation import parse_bundle_input

__all__ = ["ContextSource", "StaticContextSource", "load_bundle_input", "rows_of"]

Row = Mapping[str, Any]

_CHECK_EVERY: Final = 256
"""Rows between two calls of ``rows_of``'s ``checkpoint``: cheap, yet prompt at shutdown."""


def rows_of(
    section: str, produced: object, checkpoint: Callable[[], None] | None = None
) -> list[Any]:
    """The rows a source returned for ``section``, as a list, or why they are not rows.

    Args:
        section: ``knowledge_assets``, ``lead_memory`` or ``thread`` (named in errors).
        produced: What the source's method returned.
        checkpoint: Called every few rows while a lazy iterable is read; it may raise to stop
            the read (the gate's pool does at process exit).

    Raises:
        BundleInputError: ``produced`` is not an iterable of rows (``None``, ``str``,
            ``bytes``, a mapping, a number, a coroutine...); the message names the section
            and the type, never a value. A coroutine is closed first (it will never run).
        Exception: Whatever iterating ``produced`` raises, unchanged.
    """
    if isinstance(produced, list | tuple):
        return list(produced)
    if (
        produced is None
        or isinstance(produced, str | bytes | bytearray | memoryview | Mapping)
        or not isinstance(produced, Iterable)
        or inspect.isawaitable(produced)
    ):
        if inspect.iscoroutine(produced):
            produced.close()
        what = "null" if produced is None else type(produced).__name__
        raise BundleInputError([f"{section}: expected an iterable of rows, got {what}"])
    if checkpoint is None:
        return list(produced)
    rows: list[Any] = []
    append = rows.append
    for count, row in enumerate(produced):
        if count % _CHECK_EVERY == 0:
            checkpoint()
        append(row)
    return rows


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
        BundleInputError: A section is not an iterable of rows (``rows_of``), or a row does
            not validate (``knowledge_assets[3].content: ...``).
        Exception: Whatever ``source`` raises, unchanged, for the caller's fallback.
    """
    return parse_bundle_input(
        {
            **request.model_dump(),
            "knowledge_assets": rows_of(
                "knowledge_assets", source.knowledge_assets(request.client_id)
            ),
            "lead_memory": rows_of("lead_memory", source.lead_memory(request.lead_id)),
            "thread": rows_of("thread", source.thread(request.lead_id)),
            "budgets": budgets,
        }
    )
