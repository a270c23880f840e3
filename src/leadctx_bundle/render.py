"""How the bundle is laid out as text, in blocks whose token counts add up exactly.

The bundle is a sequence of *blocks*: a section heading (``## Knowledge assets``) or one item.
Every block starts with a character we choose (``#``, ``-`` or ``[``) and ends with the
separator ``"\\n\\n"``, except the bundle's last block, which ends with its content::

    ## Knowledge assets

    ### Pricing
    Plans start at ...

    ## Lead memory

    - 2026-11-20: Prefers calls after 3 pm.

    ## Recent thread

    [2026-11-24 09:12] lead: Could we meet Thursday?

Why blocks: the token count of the whole text is the sum of its blocks' counts, so a build
never re-encodes the bundle to count it, and per-section counts add up to the total exactly.
This holds because tiktoken splits text with a regex before applying BPE within each piece,
and for ``cl100k_base`` and ``o200k_base`` a block boundary is always a piece boundary:

* every alternative of their patterns that can match a newline ends at the last newline of a
  whitespace run (``\\s*[\\r\\n]``, `` ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*``) or matches whitespace only,
  so no piece continues past the separator into a block that starts with ``#``, ``-`` or
  ``[`` (not ``/``, which o200k's punctuation pieces may absorb after newlines);
* the separator's newline run matches the same way whether the block is followed by another
  block or by the end of the text, so each block encodes alone exactly as it does in place.

The property test ``test_text_tokens_are_the_sum_of_block_tokens`` checks this against a full
re-encode on adversarial endings (spaces, tabs, punctuation, ``/``, CR, Unicode spaces,
combining marks); the byte heuristic is additive by definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from leadctx_bundle.models import KnowledgeAsset, LeadMemoryEntry, ThreadMessage
from leadctx_bundle.stats import SectionName

__all__ = [
    "HEADINGS",
    "SEPARATOR",
    "ItemBlock",
    "asset_block",
    "heading_block",
    "memory_block",
    "thread_block",
]

SEPARATOR: Final = "\n\n"

HEADINGS: Final[dict[SectionName, str]] = {
    "knowledge_assets": "## Knowledge assets",
    "lead_memory": "## Lead memory",
    "thread": "## Recent thread",
}


@dataclass(frozen=True, slots=True)
class ItemBlock:
    """One item as rendered: ``head + body + SEPARATOR``.

    Args:
        head: The item's framing (heading line, date, role); never cut.
        body: The item's content; truncation keeps a prefix of it.
    """

    head: str
    body: str

    @property
    def parts(self) -> tuple[str, str, str]:
        """``(head, body, SEPARATOR)``: counted without joining (see ``TokenCounter.count``)."""
        return (self.head, self.body, SEPARATOR)

    @property
    def text(self) -> str:
        """The block as it appears in the bundle (before the final separator is dropped)."""
        return "".join(self.parts)

    def cut(self, body_chars: int) -> ItemBlock:
        """This block with its body cut to its first ``body_chars`` characters."""
        return ItemBlock(self.head, self.body[:body_chars])


def heading_block(section: SectionName) -> str:
    """The heading block of ``section``, separator included."""
    return HEADINGS[section] + SEPARATOR


def _one_line(text: str) -> str:
    return " ".join(text.split())


def asset_block(asset: KnowledgeAsset) -> ItemBlock:
    """``### <title>`` on its own line, then the content."""
    return ItemBlock(f"### {_one_line(asset.title)}\n", asset.content)


def memory_block(entry: LeadMemoryEntry) -> ItemBlock:
    """``- <date>: <content>`` (UTC date)."""
    return ItemBlock(f"- {entry.created_at:%Y-%m-%d}: ", entry.content)


def thread_block(message: ThreadMessage) -> ItemBlock:
    """``[<date time>] <role>: <content>`` (UTC, minutes)."""
    return ItemBlock(f"[{message.sent_at:%Y-%m-%d %H:%M}] {message.role}: ", message.content)
