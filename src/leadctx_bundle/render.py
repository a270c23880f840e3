"""How the bundle is laid out as text: blocks whose boundaries no content can forge, and whose
token counts add up exactly.

The bundle is a sequence of *blocks*: a section heading (``## Knowledge assets``) or one item.
Every block starts with a character we choose (``#``, ``-`` or ``[``) and ends with the
separator ``"\n\n"``, except the bundle's last block, which ends with its content::

    ## Knowledge assets

    ### Pricing
      Plans start at 49 EUR per seat.
      Annual plans: two months free.

    ## Lead memory

    - 2026-11-20: Prefers calls after 3 pm.

    ## Recent thread

    [2026-11-24 09:12] lead: Could we meet Thursday?
      Or Friday morning.

**Content cannot forge structure.** Pipelines decide auto-sends and meetings on this text, and
its content is a lead's or a client's (an email may hold ``\n\n## Recent thread\n\n[...]``).
So every line break in content (each one ``str.splitlines`` knows: ``\n``, ``\r\n``, ``\r``,
``\v``, ``\f``, ``\x1c``-``\x1e``, ``\x85``, U+2028, U+2029) is followed by ``INDENT`` (two
spaces), and an asset's content starts on an indented line too. Content therefore never
starts a line at column 0: a line at column 0 is always one we wrote (a heading, an item's
head), a blank line (``"\n\n"``) only ever separates blocks, and continuation lines read as
what they are, the item's own text, as in a Markdown list item. Nothing else is changed: the
content is recovered exactly by removing ``INDENT`` after each line break. The item heads
carry no line break either: a title is folded to one line, a role with a line separator is a
validation error (``models.ThreadMessage``). ``tests/bundle/test_structure.py`` parses the
rendered text back into exactly the sections and items that went in, for any content.

Why indentation rather than escaping a line's first character: it covers every structure at
once (headings, list items, thread lines, blank lines) without a list of characters to
escape, it is what an LLM reads as a continuation, and it costs about one token per content
line, counted like any other text (the packer budgets what is rendered).

**Why block counts add up**: the token count of the whole text is the sum of its blocks'
counts, so a build never re-encodes the bundle to count it, and per-section counts add up to
the total exactly. This holds because tiktoken splits text with a regex before applying BPE
within each piece, and for ``cl100k_base`` and ``o200k_base`` a block boundary is always a
piece boundary:

* every alternative of their patterns that can match a newline ends at the last newline of a
  whitespace run (``\\s*[\r\n]``, `` ?[^\\s\\p{L}\\p{N}]+[\r\n/]*``) or matches whitespace only,
  so no piece continues past the separator into a block that starts with ``#``, ``-`` or
  ``[`` (not ``/``, which o200k's punctuation pieces may absorb after newlines);
* the separator's newline run matches the same way whether the block is followed by another
  block or by the end of the text, so each block encodes alone exactly as it does in place.

The property test ``test_text_tokens_are_the_sum_of_block_tokens`` checks this against a full
re-encode on adversarial endings (spaces, tabs, punctuation, ``/``, CR, Unicode spaces,
combining marks); the byte heuristic is additive by definition.

**Cost**: indenting copies the content, so an item is rendered only as far as any room could
use (``limit``: beyond it the block provably holds more tokens than the whole budget); the
characters left out are counted in ``ItemBlock.hidden`` for the truncation's lower bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from leadctx_bundle.models import KnowledgeAsset, LeadMemoryEntry, ThreadMessage
from leadctx_bundle.stats import SectionName

__all__ = [
    "HEADINGS",
    "INDENT",
    "LINE_BREAKS",
    "SEPARATOR",
    "ItemBlock",
    "asset_block",
    "heading_block",
    "indent_lines",
    "memory_block",
    "thread_block",
]

SEPARATOR: Final = "\n\n"

INDENT: Final = "  "
"""What follows every line break of content, so that content never starts a line."""

LINE_BREAKS: Final = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
"""Every character ``str.splitlines`` breaks a line at (``\\r\\n`` is one break)."""

HEADINGS: Final[dict[SectionName, str]] = {
    "knowledge_assets": "## Knowledge assets",
    "lead_memory": "## Lead memory",
    "thread": "## Recent thread",
}

_LONE_CR: Final = re.compile(r"\r(?!\n)")
# The other breaks, one character each; the last three are outside ASCII.
_ASCII_BREAKS: Final = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
_UNICODE_BREAKS: Final = ("\x85", "\u2028", "\u2029")


def indent_lines(text: str) -> str:
    """``text`` with ``INDENT`` after each line break (``\\r\\n`` counts as one).

    A few C-speed passes (``str.replace``), each only when its break occurs: text without a
    line break is returned as it is.

    Args:
        text: Item content.
    """
    if "\n" in text:
        text = text.replace("\n", "\n" + INDENT)  # "\r\n" becomes "\r\n  " here too
    if "\r" in text:
        text = _LONE_CR.sub("\r" + INDENT, text)
    for brk in _ASCII_BREAKS:
        if brk in text:
            text = text.replace(brk, brk + INDENT)
    if not text.isascii():
        for brk in _UNICODE_BREAKS:
            if brk in text:
                text = text.replace(brk, brk + INDENT)
    return text


@dataclass(frozen=True, slots=True)
class ItemBlock:
    """One item as rendered: ``head + body + SEPARATOR``.

    Args:
        head: The item's framing (heading line, date, role); never cut.
        body: The item's content as rendered (``indent_lines``); truncation keeps a prefix
            of it that ends where a line of content ends or inside one, never between a
            line break and its indent.
        hidden: Characters of content not rendered at all (beyond ``limit``): the block is
            then known to be longer than any room, and its true size is at least this much
            more than what is rendered.
    """

    head: str
    body: str
    hidden: int = 0

    @property
    def parts(self) -> tuple[str, str, str]:
        """``(head, body, SEPARATOR)``: counted without joining (see ``TokenCounter.count``)."""
        return (self.head, self.body, SEPARATOR)

    @property
    def text(self) -> str:
        """The block as it appears in the bundle (before the final separator is dropped)."""
        return "".join(self.parts)

    def cut(self, body_chars: int) -> ItemBlock:
        """This block with its body cut to at most its first ``body_chars`` characters.

        The cut steps back before a line break whose ``INDENT`` it would split, so the kept
        body is always the rendering of a prefix of the content.
        """
        body = self.body[:body_chars]
        end = len(body)
        spaces = end
        while spaces > 0 and end - spaces < len(INDENT) and body[spaces - 1] == " ":
            spaces -= 1
        if spaces > 0 and body[spaces - 1] in LINE_BREAKS and end - spaces < len(INDENT):
            end = spaces - 1  # before the break (a cut right after "\r" of "\r\n" too)
            if body[end] == "\n" and end > 0 and body[end - 1] == "\r":
                end -= 1  # "\r\n" is one break: its indent follows the pair
        return ItemBlock(self.head, body[:end])


def heading_block(section: SectionName) -> str:
    """The heading block of ``section``, separator included."""
    return HEADINGS[section] + SEPARATOR


def _one_line(text: str) -> str:
    # str.split() splits at every line break str.splitlines knows (they are all whitespace).
    return " ".join(text.split())


def _rendered(content: str, limit: int | None) -> tuple[str, int]:
    """``indent_lines`` of at most ``limit`` characters of ``content``, and how many are left."""
    if limit is None or len(content) <= limit:
        return indent_lines(content), 0
    end = limit - 1 if content[limit - 1] == "\r" else limit  # keep "\r\n" whole
    return indent_lines(content[:end]), len(content) - end


def asset_block(asset: KnowledgeAsset, limit: int | None = None) -> ItemBlock:
    """``### <title>`` on its own line, then the content, every line indented.

    Args:
        asset: The asset.
        limit: Render at most this many characters of content (``None``: all of it).
    """
    body, hidden = _rendered(asset.content, limit)
    return ItemBlock(f"### {_one_line(asset.title)}\n{INDENT}", body, hidden)


def memory_block(entry: LeadMemoryEntry, limit: int | None = None) -> ItemBlock:
    """``- <date>: <content>`` (UTC date), continuation lines indented.

    Args:
        entry: The memory entry.
        limit: Render at most this many characters of content (``None``: all of it).
    """
    body, hidden = _rendered(entry.content, limit)
    return ItemBlock(f"- {entry.created_at:%Y-%m-%d}: ", body, hidden)


def thread_block(message: ThreadMessage, limit: int | None = None) -> ItemBlock:
    """``[<date time>] <role>: <content>`` (UTC, minutes), continuation lines indented.

    Args:
        message: The message (its role is one line, without ``": "``: see the model).
        limit: Render at most this many characters of content (``None``: all of it).
    """
    body, hidden = _rendered(message.content, limit)
    return ItemBlock(f"[{message.sent_at:%Y-%m-%d %H:%M}] {message.role}: ", body, hidden)
