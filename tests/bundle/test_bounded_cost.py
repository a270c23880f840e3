"""A build's cost is bounded by the budget, not by the input: huge and adversarial items.

Each build here asserts the guarantees against a direct ``encode_ordinary`` of the bundle text
(exact total, budgets, a kept item is a prefix of the original) and counts the characters the
token counter passed to the encoder: that figure, not a clock, shows the cost.
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Sequence
from typing import Any

import pytest
import regex  # type: ignore[import-untyped]  # tiktoken's own dependency
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadctx_bundle import (
    BundleProfile,
    LeadContextBundle,
    build_bundle,
    load_encoding,
    token_counter,
)
from leadctx_bundle.encodings import TiktokenEncodingName
from leadctx_bundle.models import scrub_text
from leadctx_bundle.packing import fill_section
from leadctx_bundle.render import INDENT, SEPARATOR, ItemBlock, heading_block, indent_lines
from leadctx_bundle.tokens import (
    PREFIX_CHARS_PER_TOKEN,
    PREFIX_SLACK_CHARS,
    ByteHeuristicTokenizer,
    TiktokenTokenizer,
    TokenCounter,
)
from tests.bundle.structure import unindent
from tests.bundle.test_properties import exact_count

MB = 1_000_000
ENCODINGS: list[TiktokenEncodingName] = ["o200k_base", "cl100k_base"]
TITLE_HEAD = heading_block("knowledge_assets") + "### T\n" + INDENT

_rng = random.Random(20261126)  # noqa: S311 - reproducible test data, not a secret
RANDOM_LETTERS = "".join(_rng.choices(string.ascii_letters, k=MB))

# One item each, far longer than any room here. Built from a 1 MB pattern, so the 10 MB
# version of each is its own pattern repeated (a prefix of one is a prefix of the other).
ADVERSARIAL: dict[str, str] = {
    "one repeated letter": "a" * MB,
    "random letters, no spaces": RANDOM_LETTERS,
    "spaces": " " * MB,
    "whitespace mix": (" \t\n\r\u3000\u00a0" * MB)[:MB],
    "newlines": "\n" * MB,
    "CJK": ("日本語の長い文章" * MB)[:MB],
    "emoji": ("\U0001f642\U0001f469\u200d\U0001f469\u200d\U0001f467" * MB)[:MB],
    "special-token text": ("<|endoftext|>" * MB)[:MB],
    "prose": ("Plans start at 49 EUR per seat.\nWe meet on Thursday; call me. " * MB)[:MB],
}


def asset_profile(room: int, encoding: str) -> BundleProfile:
    return BundleProfile(
        budget_total=room,
        knowledge_assets=room,
        lead_memory=0,
        thread=0,
        min_item_tokens=4,
        encoding=encoding,
    )


def one_asset(content: str) -> dict[str, Any]:
    return {
        "client_id": "acme",
        "lead_id": "lead-1",
        "pipeline": "draft",
        "knowledge_assets": [{"id": "big", "title": "T", "content": content}],
    }


def build_cold(content: str, profile: BundleProfile) -> tuple[LeadContextBundle, int]:
    """The bundle, and the characters encoded to build it from a cold cache."""
    counter = token_counter(profile.encoding)
    counter.clear()
    bundle = build_bundle(one_asset(content), profile=profile)
    return bundle, counter.info().encoded_chars


def check_cut_item(bundle: LeadContextBundle, content: str, profile: BundleProfile) -> None:
    stats = bundle.stats
    section = stats.sections["knowledge_assets"]
    assert stats.tokens_total == exact_count(bundle) == section.tokens
    assert stats.tokens_total <= profile.budget_total
    assert section.items_included == section.items_truncated == 1
    kept = bundle.text.removeprefix(TITLE_HEAD)
    assert kept != bundle.text
    assert scrub_text(content).startswith(unindent(kept.removesuffix(SEPARATOR)))
    assert section.tokens_truncated > 0


@pytest.mark.parametrize("encoding", [*ENCODINGS, "heuristic"])
@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_a_huge_adversarial_item_is_cut_exactly_at_a_cost_set_by_the_budget(
    kind: str, encoding: str
) -> None:
    # Given one asset of 1 MB and one of 10 MB with the same start, and a small budget
    profile = asset_profile(300, encoding)
    small, large = ADVERSARIAL[kind], ADVERSARIAL[kind] * 10
    # When each is built from a cold cache
    bundle, cost = build_cold(small, profile)
    bundle_10x, cost_10x = build_cold(large, profile)
    # Then both keep the same exact, in-budget prefix
    check_cut_item(bundle, small, profile)
    check_cut_item(bundle_10x, large, profile)
    assert bundle_10x.text == bundle.text
    # And the encoder saw the same characters: a function of the budget, not of the input
    assert cost_10x == cost
    assert cost <= 8 * 128 * profile.budget_total
    # And what was cut is a proven lower bound, never presented as a count
    section = bundle_10x.stats.sections["knowledge_assets"]
    assert section.tokens_truncated_exact is False


@pytest.mark.parametrize("size", [20_000, 150_000])  # the floor scans the rest only below ~38k
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_what_was_cut_is_a_true_lower_bound(
    kind: str, encoding: TiktokenEncodingName, size: int
) -> None:
    # Given an item long enough to go through a prefix, short enough to count whole here
    content = ADVERSARIAL[kind][:size]
    profile = asset_profile(300, encoding)
    bundle, _ = build_cold(content, profile)
    section = bundle.stats.sections["knowledge_assets"]
    if section.items_truncated == 0:  # 20,000 spaces fit: taken whole, counted exactly
        assert bundle.text.removesuffix(SEPARATOR) == TITLE_HEAD + content
        assert bundle.stats.tokens_total == exact_count(bundle)
        return
    check_cut_item(bundle, content, profile)
    if section.tokens_truncated_exact:
        return  # the prefix could not prove it too long, so it was measured whole
    # Then the reported cut is at most what a whole encode says was cut
    encoding_ = load_encoding(encoding)
    whole = len(encoding_.encode_ordinary("### T\n" + INDENT + indent_lines(content) + SEPARATOR))
    kept = section.tokens - len(encoding_.encode_ordinary(heading_block("knowledge_assets")))
    assert 0 < section.tokens_truncated <= whole - kept


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_prose_is_encoded_about_as_far_as_what_fits(encoding: str) -> None:
    profile = asset_profile(2000, encoding)
    content = ADVERSARIAL["prose"] * 10
    bundle, cost = build_cold(content, profile)
    check_cut_item(bundle, content, profile)
    kept = len(bundle.text)
    # Prefixes sized by the characters per token seen (a quarter to spare), encoded once each
    # past safe splits; then the cut is counted with and without its final separator.
    assert cost <= 1.5 * kept + 2 * kept
    assert bundle.stats.sections["knowledge_assets"].tokens_truncated_exact is False


def test_a_huge_item_that_fits_is_taken_whole_and_counted_exactly() -> None:
    # 200,000 spaces are a few thousand tokens: far more characters than 8 per token of room,
    # yet they fit; the prefix never proves otherwise, so the item is measured whole.
    profile = asset_profile(3000, "o200k_base")
    content = " " * 200_000 + "end"
    bundle, _ = build_cold(content, profile)
    section = bundle.stats.sections["knowledge_assets"]
    assert section.items_included == 1
    assert section.items_truncated == 0
    assert bundle.text == TITLE_HEAD + content
    assert bundle.stats.tokens_total == exact_count(bundle)


def test_a_huge_item_after_others_closes_the_section_within_budget() -> None:
    profile = BundleProfile(budget_total=500, knowledge_assets=500, lead_memory=0, thread=0)
    data = one_asset("short")
    data["knowledge_assets"] = [
        {"id": "a", "title": "A", "content": "Plans start at 49 EUR.", "rank": 1},
        {"id": "b", "title": "B", "content": RANDOM_LETTERS * 10, "rank": 2},
        {"id": "c", "title": "C", "content": "never reached", "rank": 3},
    ]
    counter = token_counter("o200k_base")
    counter.clear()
    bundle = build_bundle(data, profile=profile)
    section = bundle.stats.sections["knowledge_assets"]
    assert (section.items_included, section.items_truncated, section.items_dropped) == (2, 1, 1)
    assert bundle.stats.tokens_total == exact_count(bundle) <= 500
    assert "never reached" not in bundle.text
    assert counter.info().encoded_chars <= 8 * 128 * 500


# -- the safe splits and the prefix path against encoding whole ------------------------------

TEXT_ALPHABET = st.sampled_from(
    [
        *("a", "b", "c", "X", "Y", "Z", "0", "1", "9", " ", "  ", "\n", "\n\n", "\r\n", "\t"),
        *("'", ".", ",", "-", "/", "!", "?", "#", "[", "<", "|", ">", "'s", "'ll", "Hello"),
        *("don", "it", "we", "'t", "'re", "'S", "ABC", "\u00e9t\u00e9"),
        *("é", "日本", "\u3000", "\u00a0", "\U0001f642", "e\u0301", "<|endoftext|>"),
    ]
)
texts = st.lists(TEXT_ALPHABET, min_size=1, max_size=60).map("".join)


def tokenizer_for(name: TiktokenEncodingName) -> TiktokenTokenizer:
    tokenizer = token_counter(name).tokenizer
    assert isinstance(tokenizer, TiktokenTokenizer)
    return tokenizer


@settings(max_examples=300, deadline=None)
@given(text=texts, continuation=texts)
# The traps the rule steers clear of: a contraction, "/" after a newline in a punctuation
# piece, a digit run before letters, whitespace before a newline.
@example(text="we don't know", continuation="")
@example(text="ok!\n/path", continuation="x")
@example(text="123abc def", continuation="")
@example(text="abc  \n\ndef", continuation="  ")
def test_safe_splits_are_additive(text: str, continuation: str) -> None:
    # The argument of tokens.py, checked against the installed tiktoken: the text before a
    # safe split encodes to the leading tokens of any text that continues past it.
    for name in ENCODINGS:
        tokenizer = tokenizer_for(name)
        rules = tokenizer.prefix_rules
        assert rules is not None
        stop = len(text)
        while (split := rules.split(text, 1, stop)) is not None:
            head = list(tokenizer.encode(text[:split]))
            longer = text[: split + 1] + continuation
            for whole in (text, longer):
                assert list(tokenizer.encode(whole))[: len(head)] == head
                # Stronger than equal tokens: the same pre-split pieces on both sides.
                assert pieces(name, whole[:split]) == pieces(name, whole, until=split)
            stop = split


@functools.cache
def split_pattern(name: TiktokenEncodingName) -> Any:
    return regex.compile(load_encoding(name)._pat_str)  # the installed tiktoken's own pattern


def pieces(name: TiktokenEncodingName, text: str, until: int | None = None) -> list[str]:
    """tiktoken's pre-split of ``text`` (its own pattern), up to a piece boundary at ``until``."""
    pattern = split_pattern(name)
    found = [match.group() for match in pattern.finditer(text)]
    if until is None:
        return found
    kept, length = [], 0
    for piece in found:
        if length == until:
            break
        kept.append(piece)
        length += len(piece)
    assert length == until, "the split is not a piece boundary of the longer text"
    return kept


class WholeOnly:
    """A tokenizer without prefix rules: the counter measures every text whole."""

    def __init__(self, inner: TiktokenTokenizer) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    def encode(self, text: str) -> Sequence[int]:
        return self._inner.encode(text)

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return self._inner.decode_bytes(tokens)


words = st.lists(
    st.sampled_from(["the", "plan", "Thursday", "49", "EUR.", "call", "naïve", "日本語", "—"]),
    min_size=1,
    max_size=12,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(words, min_size=1, max_size=8),
    repeat=st.integers(20, 200),
    room=st.integers(5, 80),
    name=st.sampled_from(ENCODINGS),
)
# Text with no safe split at all is measured whole: exact, and no cheaper than a whole encode.
@example(paragraphs=["日本語"], repeat=73, room=9, name="o200k_base")
@example(paragraphs=["日本語"], repeat=67, room=6, name="o200k_base")
def test_with_safe_splits_the_prefix_path_cuts_exactly_as_a_whole_encode(
    paragraphs: list[str], repeat: int, room: int, name: TiktokenEncodingName
) -> None:
    # Given a long text with splits everywhere, measured through prefixes and whole
    body = ("\n".join(paragraphs) + "\n") * repeat
    item = ItemBlock("### T\n", body)
    tokenizer = tokenizer_for(name)
    prefixed = TokenCounter(tokenizer)
    whole = TokenCounter(WholeOnly(tokenizer))
    heading = heading_block("knowledge_assets")
    fills = [
        fill_section(heading, [item], room, min_item_tokens=4, counter=counter)
        for counter in (prefixed, whole)
    ]
    # Then the kept text and every count agree, except what was cut, a bound on one side
    assert [(p.block, p.tokens) for p in fills[0].items] == [
        (p.block, p.tokens) for p in fills[1].items
    ]
    assert fills[0].heading_tokens == fills[1].heading_tokens
    space = room - prefixed.count(heading)
    # The prefix path applies to a long text that has a safe split to cut at (an ASCII letter
    # before an ASCII non-letter other than an apostrophe, a newline before an ASCII letter or
    # digit); one made only of words such as "日本語" has none and is measured whole, exactly.
    long = len(item.text) > PREFIX_CHARS_PER_TOKEN * space + PREFIX_SLACK_CHARS and bool(
        re.search(r"[A-Za-z][\x00-\x26\x28-\x40\x5b-\x60\x7b-\x7f]|\n[A-Za-z0-9]", body)
    )
    for bounded, exact in zip(fills[0].items, fills[1].items, strict=True):
        assert exact.cut_exact
        if exact.truncated:
            assert 0 < bounded.tokens_cut <= exact.tokens_cut
            assert bounded.cut_exact is not long
        else:
            assert (bounded.tokens_cut, bounded.cut_exact) == (0, True)
    # And the prefix path encoded less than the whole item
    if long:
        assert prefixed.info().encoded_chars < whole.info().encoded_chars


def test_the_heuristic_repairs_surrogates_as_the_models_do() -> None:
    # One repair for lone surrogates, shared by the models and the byte heuristic.
    for text in ("a\ud800b", "\ud83d\ude42", "\udc80x"):
        assert ByteHeuristicTokenizer().encode(text) == scrub_text(text).encode("utf-8")
