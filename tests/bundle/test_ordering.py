"""Section order: assets by rank, memory newest first, thread most recent first; duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

from leadctx_bundle import KnowledgeAsset, LeadMemoryEntry, ThreadMessage
from leadctx_bundle.ordering import (
    assets_in_rank_order,
    memory_newest_first,
    thread_most_recent_first,
)


def asset(id_: str, rank: int | None) -> KnowledgeAsset:
    return KnowledgeAsset(id=id_, title=id_, content="c", rank=rank)


def memory(id_: str, day: int) -> LeadMemoryEntry:
    return LeadMemoryEntry(id=id_, content="c", created_at=datetime(2026, 11, day, tzinfo=UTC))


def message(content: str, minute: int) -> ThreadMessage:
    return ThreadMessage(
        role="lead", content=content, sent_at=datetime(2026, 11, 24, 9, minute, tzinfo=UTC)
    )


def test_assets_by_rank_then_unranked_then_input_order() -> None:
    assets = [asset("u1", None), asset("r3", 3), asset("r1", 1), asset("u2", None), asset("r1b", 1)]
    assert [a.id for a in assets_in_rank_order(assets)] == ["r1", "r1b", "r3", "u1", "u2"]


def test_duplicate_asset_ids_keep_the_best_ranked_copy() -> None:
    assets = [asset("x", 5), asset("y", 2), asset("x", 1)]
    ordered = list(assets_in_rank_order(assets))
    assert [(a.id, a.rank) for a in ordered] == [("x", 1), ("y", 2)]


def test_memory_newest_first_ties_in_input_order_duplicates_keep_the_newest() -> None:
    entries = [memory("a", 1), memory("b", 3), memory("c", 3), memory("a", 5)]
    assert [(m.id, m.created_at.day) for m in memory_newest_first(entries)] == [
        ("a", 5),
        ("b", 3),
        ("c", 3),
    ]


def test_thread_most_recent_first_later_input_first_on_ties() -> None:
    messages = [message("first", 1), message("third", 3), message("second", 2), message("x", 3)]
    assert [m.content for m in thread_most_recent_first(messages)] == [
        "x",
        "third",
        "second",
        "first",
    ]
