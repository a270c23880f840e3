"""A strict parser of the rendered bundle, written from ``render.py``'s grammar, for the tests.

It reads a bundle's text back into its sections and items, and fails on anything the grammar
does not allow: a block that is no heading or item, an item outside a section, a line break in
content that is not followed by the indent. If content could forge structure, the parse would
give more (or other) sections and items than went in; ``test_structure.py`` checks it never
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from leadctx_bundle.render import HEADINGS, INDENT, LINE_BREAKS, SEPARATOR

SECTION_OF = {heading: section for section, heading in HEADINGS.items()}

_MEMORY = re.compile(r"- (\d{4}-\d{2}-\d{2}): ")
_MESSAGE = re.compile(r"\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2})\] ")


class BundleSyntaxError(AssertionError):
    """The text does not follow the rendered bundle's grammar."""


@dataclass(frozen=True)
class Item:
    """One parsed item: its head fields and its content, the indent removed."""

    head: tuple[str, ...]
    content: str


@dataclass
class Section:
    """One parsed section and its items, in the order they appear."""

    name: str
    items: list[Item] = field(default_factory=list)


def unindent(body: str) -> str:
    """The content of a rendered body: the ``INDENT`` after every line break removed.

    Raises:
        BundleSyntaxError: A line break is not followed by the indent (content that starts
            a line of its own: the grammar never allows it).
    """
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        out.append(char)
        index += 1
        if char in LINE_BREAKS:
            if char == "\r" and body[index : index + 1] == "\n":
                out.append("\n")
                index += 1
            if body[index : index + len(INDENT)] != INDENT:
                raise BundleSyntaxError(
                    f"a line break at {index - 1} is not followed by the indent"
                )
            index += len(INDENT)
    return "".join(out)


def parse_block(block: str) -> tuple[str, Item | None]:
    """``("heading", None)`` with the section's name, or the item kind and the item."""
    if block in SECTION_OF:
        return SECTION_OF[block], None
    if block.startswith("### "):
        title, newline, rest = block[4:].partition("\n")
        if not newline or not rest.startswith(INDENT):
            raise BundleSyntaxError("an asset's content does not start on an indented line")
        if any(char in LINE_BREAKS for char in title):
            raise BundleSyntaxError("an asset's title holds a line break")
        return "knowledge_assets", Item((title,), unindent(rest[len(INDENT) :]))
    if (memory := _MEMORY.match(block)) is not None:
        return "lead_memory", Item((memory.group(1),), unindent(block[memory.end() :]))
    if (message := _MESSAGE.match(block)) is not None:
        role, colon, rest = block[message.end() :].partition(": ")
        if not colon or not role or any(char in LINE_BREAKS for char in role):
            raise BundleSyntaxError("a thread message's head has no one-line role")
        return "thread", Item((message.group(1), role), unindent(rest))
    raise BundleSyntaxError(f"a block that is neither a heading nor an item: {block[:40]!r}")


def parse_bundle(text: str) -> list[Section]:
    """The sections of a rendered bundle and their items, in order.

    Raises:
        BundleSyntaxError: The text does not follow the grammar (see the module docstring).
    """
    sections: list[Section] = []
    if not text:
        return sections
    # The last block keeps its separator only when dropping it would cost a token.
    for block in text.removesuffix(SEPARATOR).split(SEPARATOR):
        kind, item = parse_block(block)
        if item is None:
            if any(section.name == kind for section in sections):
                raise BundleSyntaxError(f"section {kind} appears twice")
            sections.append(Section(kind))
            continue
        if not sections or sections[-1].name != kind:
            raise BundleSyntaxError(f"a {kind} item outside its section")
        sections[-1].items.append(item)
    if any(not section.items for section in sections):
        raise BundleSyntaxError("a section without items")
    return sections
