"""The greedy fill and token-exact truncation, on a byte tokenizer (1 token = 1 byte)."""

from __future__ import annotations

import tiktoken

from leadctx_bundle.packing import fill_section, truncate_item
from leadctx_bundle.render import SEPARATOR, ItemBlock
from leadctx_bundle.tokens import ByteHeuristicTokenizer, TiktokenTokenizer, TokenCounter

HEADING = "## H" + SEPARATOR  # 6 bytes


def counter() -> TokenCounter:
    return TokenCounter(ByteHeuristicTokenizer())


def block(body: str, head: str = "- ") -> ItemBlock:
    return ItemBlock(head, body)


def test_items_that_fit_are_taken_whole_in_order() -> None:
    # Given room for the heading and three 6-byte blocks ("- ab\n\n")
    items = [block("ab"), block("cd"), block("ef")]
    fill = fill_section(HEADING, items, 6 + 18, min_item_tokens=1, counter=counter())
    # Then all three are in, whole, and the section takes exactly its room
    assert [p.block.body for p in fill.items] == ["ab", "cd", "ef"]
    assert not any(p.truncated for p in fill.items)
    assert fill.tokens == 24


def test_the_first_item_that_does_not_fit_is_cut_and_closes_the_section() -> None:
    items = [block("ab"), block("0123456789"), block("x")]
    # Room: heading 6 + first 6 + 10 more
    fill = fill_section(HEADING, items, 22, min_item_tokens=4, counter=counter())
    assert [p.block.body for p in fill.items] == ["ab", "012345"]
    cut = fill.items[1]
    assert cut.truncated is True
    assert cut.tokens == 10  # "- 012345\n\n"
    assert cut.tokens_cut == 14 - 10
    assert fill.tokens == 22  # "x" would have fitted after a drop, but the section is closed


def test_an_item_with_less_than_the_minimum_left_is_dropped_and_closes_the_section() -> None:
    items = [block("ab"), block("0123456789"), block("x")]
    fill = fill_section(HEADING, items, 6 + 6 + 5, min_item_tokens=6, counter=counter())
    assert [p.block.body for p in fill.items] == ["ab"]


def test_a_section_where_nothing_fits_spends_nothing_not_even_its_heading() -> None:
    fill = fill_section(HEADING, [block("0123456789")], 10, min_item_tokens=8, counter=counter())
    assert fill.items == ()
    assert fill.tokens == 0


def test_zero_room_or_no_items_is_an_empty_section() -> None:
    assert fill_section(HEADING, [block("a")], 0, min_item_tokens=1, counter=counter()).tokens == 0
    assert fill_section(HEADING, [], 100, min_item_tokens=1, counter=counter()).tokens == 0


def cut_to(
    item: ItemBlock, room: int, bpe: TokenCounter, minimum: int = 1
) -> tuple[ItemBlock, int] | None:
    tokens, leading = bpe.measure(item.text, room)
    assert leading is not None
    assert tokens > room
    return truncate_item(item, leading, min_item_tokens=minimum, counter=bpe)


def test_truncation_never_cuts_into_the_head() -> None:
    item = block("body", head="### A long heading\n")
    assert cut_to(item, 12, counter()) is None


def test_truncation_drops_a_partial_utf8_character() -> None:
    # "- " + "é" * 5 = 2 + 10 bytes; room 9 leaves 7 bytes for head + body after the separator
    cut = cut_to(block("ééééé"), 9, counter())
    assert cut is not None
    assert cut[0].body == "éé"  # 4 bytes; the fifth byte would split a character
    assert cut[1] == len(cut[0].text.encode())


def test_truncation_under_bpe_fits_exactly_and_keeps_a_prefix(o200k: tiktoken.Encoding) -> None:
    bpe = TokenCounter(TiktokenTokenizer(o200k))
    body = "Ünïcödé text, 日本語, emoji 🙂 and more. " * 40
    item = ItemBlock("### Title\n", body)
    for room in (9, 10, 17, 50, 123):
        cut = cut_to(item, room, bpe, minimum=8)
        assert cut is not None
        assert cut[1] == len(o200k.encode_ordinary(cut[0].text)) <= room
        assert body.startswith(cut[0].body)
        assert cut[0].head == item.head
