"""TokenCounter: one encode per distinct text, bounded cache, prefix decoding, the heuristic."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctx_bundle import TokenCounter, token_counter
from leadctx_bundle.models import scrub_text
from leadctx_bundle.tokens import ByteHeuristicTokenizer, TiktokenTokenizer, decode_prefix


class CountingTokenizer:
    """A tokenizer that records how often it encodes (bytes as tokens)."""

    def __init__(self) -> None:
        self.encodes = 0
        self._bytes = ByteHeuristicTokenizer()

    @property
    def name(self) -> str:
        return "counting"

    def encode(self, text: str) -> Sequence[int]:
        self.encodes += 1
        return self._bytes.encode(text)

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return bytes(tokens)


def test_each_distinct_text_is_encoded_once() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer)
    # When the same texts are counted again and again
    for _ in range(5):
        assert counter.count("alpha") == 5
        assert counter.count("beta!") == 5
    # Then each was encoded once
    assert tokenizer.encodes == 2
    info = counter.info()
    assert (info.hits, info.misses, info.entries) == (8, 2, 2)


def test_a_text_that_does_not_fit_comes_back_with_its_leading_tokens() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer)
    # Given a 10-token text measured against a room of 4
    assert counter.measure("0123456789", 4) == (10, b"0123")
    # When it is measured again against the same or a smaller room
    assert counter.measure("0123456789", 4) == (10, b"0123")
    assert counter.measure("0123456789", 3) == (10, b"012")
    # Then no second encode happened
    assert tokenizer.encodes == 1
    # But a larger room needs one, and a room it fits in needs no tokens
    assert counter.measure("0123456789", 6) == (10, b"012345")
    assert counter.measure("0123456789", 10) == (10, None)
    assert tokenizer.encodes == 2


def test_texts_that_fit_keep_no_tokens() -> None:
    counter = TokenCounter(CountingTokenizer())
    assert counter.measure("short", 100) == (5, None)
    assert counter.info().stored_tokens == 0


def test_cache_is_bounded_by_entries() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer, max_entries=3)
    for text in ("a", "b", "c", "d"):
        counter.count(text)
    assert counter.info().entries == 3
    # "a" was least recently used, so it was evicted and is encoded again
    counter.count("a")
    assert tokenizer.encodes == 5


def test_cache_is_bounded_by_stored_tokens() -> None:
    counter = TokenCounter(CountingTokenizer(), max_stored_tokens=10)
    counter.measure("x" * 100, 6)
    counter.measure("y" * 100, 6)
    info = counter.info()
    assert info.stored_tokens <= 10
    assert info.entries == 1


def test_clear_forgets_everything() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer)
    counter.count("a")
    counter.clear()
    assert counter.info().entries == 0
    counter.count("a")
    assert tokenizer.encodes == 2


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TokenCounter(CountingTokenizer(), max_entries=0)


def test_decode_prefix_drops_a_trailing_partial_character(o200k: tiktoken.Encoding) -> None:
    tokenizer = TiktokenTokenizer(o200k)
    # Given text whose rare emoji spans several byte-level tokens
    text = "ok 🫠🫠"
    tokens = tokenizer.encode(text)
    # Then every prefix decodes to a prefix of the text, never to a broken character
    for count in range(len(tokens) + 1):
        prefix = decode_prefix(tokenizer, tokens, count)
        assert text.startswith(prefix)
    assert decode_prefix(tokenizer, tokens, len(tokens)) == text


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200), cut=st.integers(min_value=0, max_value=400))
def test_any_token_prefix_decodes_to_a_text_prefix(
    o200k: tiktoken.Encoding, text: str, cut: int
) -> None:
    tokenizer = TiktokenTokenizer(o200k)
    # Lone surrogates are repaired by tiktoken before encoding, as scrub_text repairs them.
    repaired = scrub_text(text)
    assert repaired.startswith(decode_prefix(tokenizer, tokenizer.encode(text), cut))


def test_heuristic_counts_utf8_bytes_an_upper_bound(o200k: tiktoken.Encoding) -> None:
    heuristic = ByteHeuristicTokenizer()
    for text in ("hello world", "日本語", "🙂", "a\ud800b"):
        assert len(heuristic.encode(text)) >= len(o200k.encode_ordinary(text))
    assert len(heuristic.encode("é")) == 2
    assert heuristic.decode_bytes(heuristic.encode("é")) == "é".encode()


def test_token_counter_is_one_per_encoding() -> None:
    assert token_counter("o200k_base") is token_counter("o200k_base")
    assert token_counter("heuristic").encoding == "heuristic"
    assert token_counter("cl100k_base").encoding == "cl100k_base"


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoding 'p50k_base'"):
        token_counter("p50k_base")  # type: ignore[arg-type]


def test_parts_count_as_their_concatenation_without_a_second_encode() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer)
    assert counter.count(("### T\n", "body", "\n\n")) == len("### T\nbody\n\n")
    assert counter.count("### T\nbody\n\n") == len("### T\nbody\n\n")
    assert tokenizer.encodes == 1
