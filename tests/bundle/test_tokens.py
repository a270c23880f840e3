"""TokenCounter: one encode per distinct text, bounded cache, prefix decoding, the heuristic."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctx_bundle import TokenCounter, token_counter
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


def test_head_kept_by_count_serves_truncation_without_encoding() -> None:
    tokenizer = CountingTokenizer()
    counter = TokenCounter(tokenizer)
    # Given a text counted with a room smaller than it
    assert counter.count("0123456789", keep_head=4) == 10
    # When its head is asked for within that room
    head = counter.head("0123456789", 4)
    # Then no second encode happens
    assert bytes(head) == b"0123"
    assert tokenizer.encodes == 1
    # But a longer head needs one
    assert bytes(counter.head("0123456789", 6)) == b"012345"
    assert tokenizer.encodes == 2


def test_texts_that_fit_keep_no_tokens() -> None:
    counter = TokenCounter(CountingTokenizer())
    counter.count("short", keep_head=100)
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
    counter.count("x" * 100, keep_head=6)
    counter.count("y" * 100, keep_head=6)
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
    # Lone surrogates are repaired by tiktoken before encoding; compare with the repaired text.
    repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
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
