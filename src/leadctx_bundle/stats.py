"""What a build cost: token and item counts per section, never content, titles or item ids.

These stats go to spans, metrics, logs and ``AIInteraction`` metadata, so their shape is
closed (``extra="forbid"``) and every field is a number or a fixed name. JSON::

    {"tokens_total": 7412, "budget_total": 8000, "encoding": "o200k_base", "build_ms": 3.2,
     "sections": {"knowledge_assets": {"tokens": 3990, "budget": 4000, "items_total": 12,
                                       "items_included": 4, "items_truncated": 1,
                                       "items_dropped": 8, "tokens_truncated": 2210,
                                       "tokens_truncated_exact": true},
                  "lead_memory": {...}, "thread": {...}}}
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SECTIONS", "BundleStats", "SectionName", "SectionStats"]

SectionName = Literal["knowledge_assets", "lead_memory", "thread"]
"""The bundle's sections, in the order they are filled and rendered."""

SECTIONS: Final[tuple[SectionName, ...]] = get_args(SectionName)

Count = Annotated[int, Field(ge=0)]


class SectionStats(BaseModel):
    """One section of one build.

    Args:
        tokens: Tokens of the section in the bundle text (heading and separators included).
            The sections' tokens add up to ``BundleStats.tokens_total`` exactly.
        budget: The section's budget from the profile (after per-call overrides). The total
            budget may cap it further.
        items_total: Items given, duplicates included.
        items_included: Items in the text, whole or truncated.
        items_truncated: Included items cut short (a subset of ``items_included``).
        items_dropped: Items left out: ``items_total - items_included``.
        tokens_truncated: Tokens cut from the truncated items. Dropped items are not
            encoded, so they add nothing here. Exact when ``tokens_truncated_exact``;
            otherwise a lower bound: at least this many tokens were cut.
        tokens_truncated_exact: ``False`` when a truncated item was far longer than the room
            and, to keep the build's cost bounded by the budget, was never encoded whole; its
            share of ``tokens_truncated`` is then a proven lower bound, not a count. ``tokens``
            and ``BundleStats.tokens_total`` stay exact either way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: Count
    budget: Count
    items_total: Count
    items_included: Count
    items_truncated: Count
    items_dropped: Count
    tokens_truncated: Count
    tokens_truncated_exact: bool = True


class BundleStats(BaseModel):
    """One build.

    Args:
        tokens_total: Exact token count of the bundle text, under ``encoding``; never more
            than ``budget_total``.
        budget_total: The total budget in force.
        encoding: ``o200k_base``, ``cl100k_base``, or ``heuristic`` (explicit opt-in: one
            token per UTF-8 byte).
        build_ms: Wall time of the build, in milliseconds.
        sections: Per-section stats, keyed ``knowledge_assets``, ``lead_memory``, ``thread``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_total: Count
    budget_total: Count
    encoding: str
    build_ms: float
    sections: dict[SectionName, SectionStats]

    def to_json(self) -> dict[str, Any]:
        """``model_dump(mode="json")``, the same keys in the same order, built without
        pydantic's serializer: the gate's log record carries it on every call (2 against
        7 µs in a loop). Every field is already a JSON number, string or boolean.
        """
        data = dict(self.__dict__)
        data["sections"] = {name: dict(section.__dict__) for name, section in self.sections.items()}
        return data
