"""``build_bundle``: the shared LeadContextBundle from validated rows, under a profile's budgets.

The shell around the pure parts: it validates the input, picks the profile, orders each
section (``ordering``), fills sections in turn under what the total leaves (``packing``),
joins the blocks (``render``) and reports ``BundleStats``.

Guarantees, for every input that validates:

* ``stats.tokens_total`` is the exact token count of ``text`` under ``stats.encoding``, and
  the sections' ``tokens`` add up to it;
* ``stats.tokens_total <= profile.budget_total`` and each section's tokens are within its
  budget;
* the same input and profile give the same ``text`` and stats (``build_ms`` aside), with a
  cold or a warm token cache.

Cost: each distinct item text is encoded at most once per process (the ``TokenCounter``
cache), items after a section closes are not encoded at all, an item far longer than the room
left is encoded only as far as the room needs (``TokenCounter.fit``), and the bundle is never
re-encoded to count it (see ``render`` for why block counts add up).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from leadctx_bundle.models import BundleInput, LeadContextBundle
from leadctx_bundle.ordering import (
    assets_in_rank_order,
    memory_newest_first,
    thread_most_recent_first,
)
from leadctx_bundle.packing import PlacedItem, SectionFill, fill_section
from leadctx_bundle.profiles import BundleProfile, load_profiles
from leadctx_bundle.render import (
    ItemBlock,
    asset_block,
    heading_block,
    memory_block,
    thread_block,
)
from leadctx_bundle.stats import SECTIONS, BundleStats, SectionName, SectionStats
from leadctx_bundle.tokens import TokenCounter, token_counter
from leadctx_bundle.validation import parse_bundle_input

__all__ = ["build_bundle", "environment_profiles"]

logger = logging.getLogger(__name__)


@functools.cache
def environment_profiles() -> Mapping[str, BundleProfile]:
    """The profiles from the environment (``load_profiles()``), read once per process.

    Raises:
        ConfigurationError: The environment or the profiles file is invalid (not cached: the
            next call reads again).
    """
    return load_profiles()


def build_bundle(
    data: BundleInput | Mapping[str, Any], *, profile: BundleProfile | None = None
) -> LeadContextBundle:
    """Build the bundle for one request.

    Args:
        data: A ``BundleInput``, or a mapping of the same shape as the CLI's input file
            (``client_id``, ``lead_id``, ``pipeline``, ``knowledge_assets``, ``lead_memory``,
            ``thread``, optional ``budgets``).
        profile: The budgets to use; ``None`` takes the pipeline's profile from
            ``environment_profiles()``. The input's ``budgets`` apply on top either way.

    Returns:
        The bundle text and its stats (see the module docstring for the guarantees).

    Raises:
        BundleInputError: ``data`` does not validate; the message names each field.
        ConfigurationError: ``profile`` is ``None`` and the environment's profiles are invalid.
        EncodingDataError: The profile's encoding cannot be built from the shipped data.
    """
    started = time.perf_counter()
    bundle_input = parse_bundle_input(data)
    base = profile if profile is not None else environment_profiles()[bundle_input.pipeline]
    active = base.with_budgets(bundle_input.budgets)
    counter = token_counter(active.encoding)

    # Generators: a section stops rendering (and encoding) items once it is full. An item is
    # rendered only as far as the whole budget could hold (render.py: indenting copies it).
    limit = counter.clip_chars(active.budget_total)
    assets = functools.partial(asset_block, limit=limit)
    memories = functools.partial(memory_block, limit=limit)
    messages = functools.partial(thread_block, limit=limit)
    offered: dict[SectionName, tuple[int, Iterator[ItemBlock]]] = {
        "knowledge_assets": (
            len(bundle_input.knowledge_assets),
            map(assets, assets_in_rank_order(bundle_input.knowledge_assets)),
        ),
        "lead_memory": (
            len(bundle_input.lead_memory),
            map(memories, memory_newest_first(bundle_input.lead_memory)),
        ),
        "thread": (
            len(bundle_input.thread),
            map(messages, thread_most_recent_first(bundle_input.thread)),
        ),
    }

    fills: dict[SectionName, SectionFill] = {}
    left = active.budget_total
    for section in SECTIONS:
        room = min(active.section_budget(section), left)
        fill = fill_section(
            heading_block(section),
            offered[section][1],
            room,
            min_item_tokens=active.min_item_tokens,
            counter=counter,
        )
        if section == "thread":
            # Chosen most recent first; read oldest first.
            fill = SectionFill(fill.heading_tokens, fill.items[::-1])
        fills[section] = fill
        left -= fill.tokens

    fills = _drop_final_separator(fills, counter)
    parts: list[str] = []
    for section, fill in fills.items():
        if fill.items:
            parts.append(heading_block(section))
            parts.extend(part for item in fill.items for part in item.parts)
    text = "".join(parts)

    sections = {
        section: _section_stats(fills[section], active.section_budget(section), offered[section][0])
        for section in SECTIONS
    }
    stats = BundleStats(
        tokens_total=sum(s.tokens for s in sections.values()),
        budget_total=active.budget_total,
        encoding=counter.encoding,
        build_ms=round((time.perf_counter() - started) * 1000, 3),
        sections=sections,
    )
    logger.debug(
        "bundle built: pipeline=%s encoding=%s tokens=%s/%s build_ms=%s",
        bundle_input.pipeline,
        stats.encoding,
        stats.tokens_total,
        stats.budget_total,
        stats.build_ms,
    )
    return LeadContextBundle(text=text, stats=stats)


def _last_filled(fills: Mapping[SectionName, SectionFill]) -> SectionName | None:
    filled = [section for section, fill in fills.items() if fill.items]
    return filled[-1] if filled else None


def _drop_final_separator(
    fills: dict[SectionName, SectionFill], counter: TokenCounter
) -> dict[SectionName, SectionFill]:
    """Count the bundle's last block without its trailing separator, where that is no dearer.

    The text then ends with content rather than a blank line. Dropping ``"\\n\\n"`` usually
    saves a token; should it ever cost one, the separator stays and no budget is touched.
    """
    section = _last_filled(fills)
    if section is None:
        return fills
    fill = fills[section]
    last = fill.items[-1]
    bare = dataclasses.replace(last, final=True)
    tokens = counter.count(bare.parts)
    if tokens > last.tokens:
        return fills
    items = (*fill.items[:-1], dataclasses.replace(bare, tokens=tokens))
    return {**fills, section: SectionFill(fill.heading_tokens, items)}


def _section_stats(fill: SectionFill, budget: int, items_total: int) -> SectionStats:
    included: Sequence[PlacedItem] = fill.items
    return SectionStats(
        tokens=fill.tokens,
        budget=budget,
        items_total=items_total,
        items_included=len(included),
        items_truncated=sum(1 for item in included if item.truncated),
        items_dropped=items_total - len(included),
        tokens_truncated=sum(item.tokens_cut for item in included),
        tokens_truncated_exact=all(item.cut_exact for item in included),
    )
