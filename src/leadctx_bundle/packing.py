"""Fitting items into a section's budget: the greedy fill and token-exact truncation.

Decisions only: these functions take ordered blocks, a budget and a ``TokenCounter`` (a
deterministic function of the text, memoised) and return what goes in. No I/O, no clocks.

The rule, for each section in turn:

1. The heading is counted first; a section with no item that fits is left out whole.
2. Items are taken in the section's order while they fit whole.
3. The first item that does not fit *closes* the section: it is cut to the room left if at
   least ``min_item_tokens`` of it fit, else dropped, and every later item is dropped. The
   kept items are therefore always a prefix of the section's order: the top-ranked assets,
   the newest memories, the most recent stretch of the thread.

Truncation slices the item's tokens, decodes them to bytes and drops a trailing partial UTF-8
character, so the kept content is a true prefix of the original. The cut block is counted
again (a prefix may re-encode differently at its end) and cut further until it fits.

Cost: an item is measured with ``TokenCounter.fit``, so one far longer than the room is
encoded only as far as the room needs, never whole; its total is then a lower bound, and so is
the ``tokens_cut`` reported for it (``cut_exact`` is false).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leadctx_bundle.render import ItemBlock
from leadctx_bundle.tokens import TokenCounter

__all__ = ["PlacedItem", "SectionFill", "fill_section", "truncate_item"]


@dataclass(frozen=True, slots=True)
class PlacedItem:
    """An item in the bundle.

    Args:
        block: The block as rendered (cut, if truncated).
        tokens: Tokens of ``block.text``.
        tokens_cut: Tokens removed by truncation (0 for a whole item): exact when
            ``cut_exact``, else a lower bound (the item was never encoded whole).
        final: The bundle's last block, rendered without the trailing separator.
        cut_exact: Whether ``tokens_cut`` is exact.
    """

    block: ItemBlock
    tokens: int
    tokens_cut: int = 0
    final: bool = False
    cut_exact: bool = True

    @property
    def parts(self) -> tuple[str, ...]:
        """The item as it appears in the bundle, in parts."""
        return self.block.parts[:2] if self.final else self.block.parts

    @property
    def truncated(self) -> bool:
        """Was the item cut short?"""
        return self.tokens_cut > 0


@dataclass(frozen=True, slots=True)
class SectionFill:
    """What one section holds.

    Args:
        heading_tokens: Tokens of the heading block (0 if the section is left out).
        items: The items placed, in the section's order.
    """

    heading_tokens: int
    items: tuple[PlacedItem, ...]

    @property
    def tokens(self) -> int:
        """Tokens of the whole section."""
        return self.heading_tokens + sum(item.tokens for item in self.items)


EMPTY = SectionFill(heading_tokens=0, items=())


def fill_section(
    heading: str,
    items: Iterable[ItemBlock],
    room: int,
    *,
    min_item_tokens: int,
    counter: TokenCounter,
) -> SectionFill:
    """Fill one section, greedily and in order, within ``room`` tokens (see module rule).

    Args:
        heading: The heading block, separator included.
        items: Blocks in the section's order, duplicates already removed. Read lazily: items
            after the section closes are never rendered, hashed or encoded.
        room: Tokens the section may take (its budget, capped by what the total leaves).
        min_item_tokens: The smallest useful cut of an item, in tokens.
        counter: Counts and slices tokens.

    Returns:
        The section's fill; ``EMPTY`` when no item fits (the heading is then not spent).
    """
    if room <= 0:
        return EMPTY
    heading_tokens = counter.count(heading)
    space = room - heading_tokens
    placed: list[PlacedItem] = []
    for item in items:
        if space <= 0:
            break
        fit = counter.fit(item.parts, space, hidden=item.hidden)
        if fit.head is None:
            placed.append(PlacedItem(item, fit.tokens))
            space -= fit.tokens
            continue
        cut = truncate_item(item, fit.head, min_item_tokens=min_item_tokens, counter=counter)
        if cut is not None:
            block, tokens = cut
            placed.append(
                PlacedItem(block, tokens, tokens_cut=fit.tokens - tokens, cut_exact=fit.exact)
            )
        break
    if not placed:
        return EMPTY
    return SectionFill(heading_tokens, tuple(placed))


def truncate_item(
    item: ItemBlock, leading_tokens: Sequence[int], *, min_item_tokens: int, counter: TokenCounter
) -> tuple[ItemBlock, int] | None:
    """Cut ``item``'s body so that its block takes at most ``len(leading_tokens)`` tokens.

    Args:
        item: A block with more tokens than the room available.
        leading_tokens: As many tokens as there is room for, decoding to a prefix of the
            block: its own leading tokens, or those of a long prefix of it (``Fit.head``).
        min_item_tokens: Give up (return ``None``) rather than keep fewer tokens of the item
            (its head included).
        counter: Counts and slices tokens.

    Returns:
        The cut block and its exact token count, or ``None`` when no useful prefix fits:
        fewer than ``min_item_tokens`` tokens, or not even the item's head.
    """
    room = len(leading_tokens)
    keep = room - 1  # leave a token for the separator; the loop corrects any misjudgement
    while keep >= min_item_tokens:
        prefix = counter.decode_prefix(leading_tokens, keep)
        body_chars = min(len(prefix) - len(item.head), len(item.body))
        if body_chars <= 0:
            return None
        cut = item.cut(body_chars)
        if not cut.body:
            return None  # the cut stepped back before a line break: no content left
        cut_tokens = counter.count(cut.parts)
        if cut_tokens <= room:
            return cut, cut_tokens
        keep -= cut_tokens - room
    return None
