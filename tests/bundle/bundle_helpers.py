"""Small factories shared by the bundle tests."""

from __future__ import annotations

from typing import Any

from leadctx_bundle import BundleProfile


def profile(**changes: Any) -> BundleProfile:
    """A small profile for tests: total 400, 200/100/100, min item 8, o200k_base."""
    values: dict[str, Any] = {
        "total_budget": 400,
        "knowledge_assets": 200,
        "lead_memory": 100,
        "thread": 100,
        "min_item_tokens": 8,
    }
    return BundleProfile(**{**values, **changes})


def request_data(**changes: Any) -> dict[str, Any]:
    """A valid bundle input mapping (CLI shape) with one row per section."""
    data: dict[str, Any] = {
        "client_id": "acme",
        "lead_id": "lead-1",
        "pipeline": "draft",
        "knowledge_assets": [
            {"id": "a1", "title": "Pricing", "content": "Plans start at 49 EUR.", "rank": 1}
        ],
        "lead_memory": [
            {"id": "m1", "content": "Prefers calls after 3 pm.", "created_at": "2026-11-20"}
        ],
        "thread": [
            {"role": "lead", "content": "Thursday at 4?", "sent_at": "2026-11-24T09:12:00Z"}
        ],
    }
    data.update(changes)
    return data
