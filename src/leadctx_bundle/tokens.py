"""Token counting for the bundle builder: one encode per distinct text, cached by content hash.

A ``Tokenizer`` turns text into tokens and a prefix of tokens back into text. Two exist:

* ``TiktokenTokenizer``: a real BPE encoding (``o200k_base``, ``cl100k_base``) built offline
  (see ``leadctx_bundle.encodings``). It uses ``encode_ordinary``: text from leads and
  knowledge assets is untrusted, so ``<|endoftext|>`` in it is plain text, never a special
  token.
* ``ByteHeuristicTokenizer``: the explicit opt-in fallback (``encoding: "heuristic"``). It
  counts one token per UTF-8 byte. That is not an estimate but a bound: every token of a
  byte-level BPE covers at least one byte, so a bundle built under it never overruns the same
  budget under a real encoding. The price is a bundle about a quarter of the size for English.

A ``TokenCounter`` wraps a tokenizer with a bounded LRU cache keyed by a BLAKE2b digest of the
text. Knowledge assets repeat across every lead of a client, so a warm build reads most counts
from the cache. An entry holds the count and, only for a text that had to be cut, its first
tokens, so that cutting it again needs no encode either.
"""

from __future__ import annotations

import codecs
import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

import tiktoken

from leadctx_bundle.encodings import TiktokenEncodingName, load_encoding

__all__ = [
    "HEURISTIC_ENCODING",
    "ByteHeuristicTokenizer",
    "CacheInfo",
    "EncodingName",
    "TiktokenTokenizer",
    "TokenCounter",
    "Tokenizer",
    "decode_prefix",
    "token_counter",
]

EncodingName = Literal["o200k_base", "cl100k_base", "heuristic"]
"""Every encoding a ``BundleProfile`` may name."""

HEURISTIC_ENCODING: Final = "heuristic"

ENCODING_NAMES: Final[tuple[EncodingName, ...]] = get_args(EncodingName)


class Tokenizer(Protocol):
    """Text to tokens and back, for one encoding."""

    @property
    def name(self) -> str:
        """The encoding name recorded in ``BundleStats.encoding``."""
        ...

    def encode(self, text: str) -> Sequence[int]:
        """All tokens of ``text``, special-token text included as ordinary text."""
        ...

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """The UTF-8 bytes ``tokens`` stand for (possibly ending in a partial character)."""
        ...


class TiktokenTokenizer:
    """A tiktoken encoding as a ``Tokenizer``.

    Args:
        encoding: The encoding; ``TiktokenTokenizer.offline(name)`` builds it from package
            data.
    """

    __slots__ = ("_encoding",)

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self._encoding = encoding

    @classmethod
    def offline(cls, name: TiktokenEncodingName) -> TiktokenTokenizer:
        """The tokenizer for ``name`` from the shipped rank files (see ``load_encoding``).

        Raises:
            EncodingDataError: The shipped data is missing or corrupt.
        """
        return cls(load_encoding(name))

    @property
    def name(self) -> str:
        """The encoding's name (``o200k_base``)."""
        return self._encoding.name

    def encode(self, text: str) -> Sequence[int]:
        """``encode_ordinary``: ``<|endoftext|>`` in ``text`` is text, not a special token."""
        return self._encoding.encode_ordinary(text)

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """The bytes of ``tokens``."""
        return self._encoding.decode_bytes(tokens)


class ByteHeuristicTokenizer:
    """One token per UTF-8 byte: an upper bound on any byte-level BPE count.

    Only used when a profile asks for ``encoding: "heuristic"``; recorded as such in the stats.
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """Always ``heuristic``."""
        return HEURISTIC_ENCODING

    def encode(self, text: str) -> Sequence[int]:
        """The UTF-8 bytes of ``text`` (lone surrogates become U+FFFD first, like tiktoken)."""
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return _replace_surrogates(text).encode("utf-8")

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """``tokens`` are bytes already."""
        return bytes(tokens)


def _replace_surrogates(text: str) -> str:
    # The same repair tiktoken applies before encoding.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def decode_prefix(tokenizer: Tokenizer, tokens: Sequence[int], count: int) -> str:
    """Decode the first ``count`` tokens, dropping a trailing partial UTF-8 character.

    The tokens of a text decode to its UTF-8 bytes, so any prefix of them decodes to a prefix
    of those bytes; cutting may split a multi-byte character, whose leading bytes are dropped.
    The result is therefore always a prefix of the encoded text.

    Args:
        tokenizer: The tokenizer that produced ``tokens``.
        tokens: Tokens of some text (or a prefix of them).
        count: How many leading tokens to decode; clamped to ``[0, len(tokens)]``.
    """
    head = tokenizer.decode_bytes(tokens[: max(count, 0)])
    # An incremental decoder holds back an incomplete final sequence instead of failing.
    return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """A snapshot of a ``TokenCounter``'s cache.

    Args:
        hits: Lookups answered from the cache.
        misses: Lookups that had to encode.
        entries: Texts currently cached.
        stored_tokens: Tokens currently kept for truncation (counts are not included).
    """

    hits: int
    misses: int
    entries: int
    stored_tokens: int


class TokenCounter:
    """Counts tokens with a bounded, thread-safe LRU cache keyed by content hash.

    Args:
        tokenizer: The encoding to count with.
        max_entries: At most this many texts are remembered (least recently used go first).
        max_stored_tokens: At most this many tokens are kept across all entries for
            truncation; counts alone cost a few dozen bytes per entry.

    The cache holds digests, counts and some token ids: no text.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        max_entries: int = 100_000,
        max_stored_tokens: int = 2_000_000,
    ) -> None:
        if max_entries < 1 or max_stored_tokens < 0:
            raise ValueError("max_entries must be >= 1 and max_stored_tokens >= 0")
        self.tokenizer = tokenizer
        self._max_entries = max_entries
        self._max_stored = max_stored_tokens
        # digest -> (token count, leading tokens kept for truncation or None)
        self._entries: OrderedDict[bytes, tuple[int, Sequence[int] | None]] = OrderedDict()
        self._stored = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:
        """The tokenizer's encoding name."""
        return self.tokenizer.name

    def count(self, text: str | tuple[str, ...]) -> int:
        """The number of tokens in ``text``, encoding it only if it is not cached.

        Args:
            text: A string, or a tuple of strings standing for their concatenation (hashed
                part by part: a large text is copied only if it must be encoded).
        """
        return self.measure(text, room=0)[0]

    def measure(self, text: str | tuple[str, ...], room: int) -> tuple[int, Sequence[int] | None]:
        """Count ``text``, and if it does not fit in ``room`` tokens, return its first ``room``.

        One digest and at most one encode per call: a text that must be cut comes back with
        the tokens to cut it from. Those tokens are cached too, so cutting the same text to the
        same room (or less) in a later build needs no encode at all.

        Args:
            text: A string, or a tuple of strings standing for their concatenation.
            room: Tokens available for it; ``0`` to count only.

        Returns:
            ``(count, head)``: ``head`` is ``None`` when ``count <= room`` or ``room <= 0``,
            else the first ``room`` tokens of ``text``.
        """
        key = _digest(text)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                count, kept = entry
                if count <= room or room <= 0:
                    self._entries.move_to_end(key)
                    self._hits += 1
                    return count, None
                if kept is not None and len(kept) >= room:
                    self._entries.move_to_end(key)
                    self._hits += 1
                    return count, kept[:room]
            self._misses += 1
        tokens = self.tokenizer.encode(text if isinstance(text, str) else "".join(text))
        count = len(tokens)
        head = _head_array(tokens, room) if count > room > 0 else None
        self._store(key, count, head)
        return count, head

    def decode_prefix(self, tokens: Sequence[int], count: int) -> str:
        """See the module function ``decode_prefix``."""
        return decode_prefix(self.tokenizer, tokens, count)

    def clear(self) -> None:
        """Forget every entry and reset the hit and miss counters."""
        with self._lock:
            self._entries.clear()
            self._stored = self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        """Hits, misses and size of the cache, now."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._entries), self._stored)

    def _store(self, key: bytes, count: int, kept: Sequence[int] | None) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and old[1] is not None:
                self._stored -= len(old[1])
                if kept is None or len(old[1]) > len(kept):
                    kept = old[1]
            if kept is not None and len(kept) > self._max_stored:
                kept = None
            self._entries[key] = (count, kept)
            self._stored += 0 if kept is None else len(kept)
            while len(self._entries) > self._max_entries or self._stored > self._max_stored:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._stored -= 0 if evicted is None else len(evicted)


def _digest(text: str | tuple[str, ...]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in (text,) if isinstance(text, str) else text:
        # surrogatepass: a lone surrogate must still hash (and differently from U+FFFD).
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.digest()


def _head_array(tokens: Sequence[int], limit: int) -> Sequence[int]:
    head = tokens[: max(limit, 0)]
    if isinstance(head, bytes):  # the byte heuristic's tokens are compact already
        return head
    # 4 bytes per token instead of a list's 8-byte pointers; ranks fit in 32 bits.
    return array("I", head)


_counters: dict[str, TokenCounter] = {}
_counters_lock = threading.Lock()


def token_counter(encoding: EncodingName) -> TokenCounter:
    """The process-wide ``TokenCounter`` for ``encoding``, created on first use.

    Builds share these counters, so a client's assets are encoded once per process.

    Args:
        encoding: ``o200k_base``, ``cl100k_base`` or ``heuristic``.

    Raises:
        EncodingDataError: A tiktoken encoding's shipped data is missing or corrupt.
        ValueError: ``encoding`` is not one of the names above.
    """
    counter = _counters.get(encoding)
    if counter is not None:
        return counter
    with _counters_lock:
        counter = _counters.get(encoding)
        if counter is None:
            counter = TokenCounter(_tokenizer(encoding))
            _counters[encoding] = counter
        return counter


def _tokenizer(encoding: EncodingName) -> Tokenizer:
    if encoding == HEURISTIC_ENCODING:
        return ByteHeuristicTokenizer()
    if encoding == "o200k_base" or encoding == "cl100k_base":  # noqa: PLR1714 - narrows the Literal for mypy
        return TiktokenTokenizer.offline(encoding)
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODING_NAMES)}")
