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

**Cost bounded by the room** (``TokenCounter.fit``). Encoding a whole item to learn that it
does not fit would make one pasted 10 MB blob cost seconds (tiktoken's BPE is super-linear on
one long pre-token). An item far longer than its room is instead encoded through a growing
prefix, never hashed or encoded whole. Two facts make that exact:

* *Safe splits.* For ``o200k_base`` and ``cl100k_base`` the text before position ``s``
  encodes, alone, to exactly the leading tokens of the whole text when ``text[s-1]`` is an
  ASCII letter and ``text[s]`` an ASCII character other than a letter or an apostrophe (a
  space, a digit, punctuation, a newline), or when ``text[s-1]`` is ``"\\n"`` and ``text[s]``
  an ASCII letter or digit. Why: tiktoken pre-splits with a regex and runs BPE inside each
  piece only. No alternative of either pattern holds a letter together with such a following
  character (the letter alternatives take letters and marks, one optional *leading*
  non-letter, and a trailing ``'s``-style contraction, which needs the apostrophe), nor a
  newline together with a following letter or digit (newlines end a whitespace piece at the
  last newline before non-space, or end a punctuation piece's ``[\\r\\n/]*`` tail). So ``s``
  is a piece boundary, and the pieces before it look at most at ``text[s]``, which stops them
  at ``s`` just as the end of the text does. It is the block-boundary argument of
  ``render.py`` applied inside an item; ``test_safe_splits_are_additive`` checks it against
  the installed tiktoken.
* *A floor for the rest.* The tokens of a text partition its bytes, so a stretch of ``b``
  bytes meets at least ``ceil(b / L)`` tokens when no token holds more than ``L`` of its
  bytes: ``L`` is the longest token (128 bytes for both encodings) in general, the longest run
  of ASCII letters inside any token (26 for ``o200k_base``, 41 for ``cl100k_base``) for a
  stretch of ASCII letters, and the most non-ASCII bytes in any token (60 and 48) for a
  stretch without ASCII. These bounds hold for any segmentation into vocabulary tokens.

When the encoded prefix ends at a safe split and already holds more tokens than the room, the
item provably does not fit, and its leading tokens are exactly those of the whole item: the cut
is the one a whole encode would give. When no safe split is in reach (one pre-token megabytes
long, such as a run of one letter), the prefix is cut where it is: its tokens still decode to
a prefix of the item, and the cut is counted again on its own, so counts stay exact for the
text kept; the item is declared too long only if the floor proves it. Either way the item's
total is then known only as a lower bound (``Fit.exact`` is false).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import math
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

import tiktoken

from leadctx_bundle.encodings import TIKTOKEN_ENCODINGS, TiktokenEncodingName, load_encoding
from leadctx_bundle.models import scrub_text

__all__ = [
    "HEURISTIC_ENCODING",
    "ByteHeuristicTokenizer",
    "CacheInfo",
    "EncodingName",
    "Fit",
    "PrefixRules",
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
    """Text to tokens and back, for one encoding.

    A tokenizer may also offer ``prefix_rules`` (a ``PrefixRules``, as ``TiktokenTokenizer``
    and ``ByteHeuristicTokenizer`` do); without it, ``TokenCounter`` measures every text whole.
    """

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


@dataclass(frozen=True, slots=True)
class PrefixRules:
    """What a tokenizer guarantees about prefixes, so a long text need not be encoded whole.

    Args:
        max_token_bytes: No token stands for more bytes than this.
        max_letter_run: No token holds a longer run of ASCII letters than this.
        max_non_ascii_bytes: No token holds more bytes outside ASCII than this.
        split: ``split(text, start, stop)`` is a safe split ``s`` with ``start <= s < stop``:
            ``text[:s]`` encodes to exactly the leading tokens of ``text`` *and of any longer
            text that starts with* ``text[:s + 1]``. The last one the search finds near
            ``stop`` (it looks back a bounded distance), or ``None``. Whether ``s`` is safe
            depends on the characters on either side of it only.
    """

    max_token_bytes: int
    max_letter_run: int
    max_non_ascii_bytes: int
    split: Callable[[str, int, int], int | None]


# An ASCII letter then an ASCII non-letter other than an apostrophe, or a newline then an
# ASCII letter or digit (module docstring). The lookbehind sees the character before the
# search's start, so a split right at the start is found too.
_SAFE_SPLIT: Final = re.compile(r"(?<=[A-Za-z])(?=[\x00-\x7f])(?![A-Za-z'])|(?<=\n)(?=[A-Za-z0-9])")
_SPLIT_SEARCH_CHARS: Final = 4096
"""How far back from the end of a prefix to look for a safe split (bounds the scan)."""
_SPLIT_SEARCH_WIDTHS: Final = (64, 512, _SPLIT_SEARCH_CHARS)

_SPLIT_ENCODINGS: Final[frozenset[str]] = frozenset(TIKTOKEN_ENCODINGS)
"""The encodings whose pre-split pattern the safe-split argument was made for."""


def _tiktoken_split(text: str, start: int, stop: int) -> int | None:
    # Look at a short tail first: ordinary text has a split every few characters.
    for width in _SPLIT_SEARCH_WIDTHS:
        low = max(start, stop - width)
        found = None
        for match in _SAFE_SPLIT.finditer(text, low, stop):
            found = match.start()
        if found is not None or low == start:
            return found
    return None


def _byte_split(text: str, start: int, stop: int) -> int | None:
    # One token per byte: any split is additive, except inside a surrogate pair written as
    # two code units, which the repair joins into one character.
    for at in range(stop - 1, max(start, stop - 3) - 1, -1):
        if at > 0 and not (
            "\ud800" <= text[at - 1] <= "\udbff" and "\udc00" <= text[at] <= "\udfff"
        ):
            return at
    return None


_BYTE_RULES: Final = PrefixRules(
    max_token_bytes=1, max_letter_run=1, max_non_ascii_bytes=1, split=_byte_split
)

_ASCII_BYTES: Final = bytes(range(128))
_LETTERS_ONLY: Final = bytes(c if chr(c).isascii() and chr(c).isalpha() else 32 for c in range(256))
_ASCII_CHAR: Final = re.compile(r"[\x00-\x7f]")


@functools.lru_cache(maxsize=8)
def _tiktoken_rules(encoding: tiktoken.Encoding) -> PrefixRules:
    # One scan of the vocabulary per encoding object (~0.07 s), shared by its tokenizers.
    values = encoding.token_byte_values()
    return PrefixRules(
        max_token_bytes=max(map(len, values)),
        max_letter_run=max(len(run) for v in values for run in v.translate(_LETTERS_ONLY).split()),
        max_non_ascii_bytes=max(len(v.translate(None, _ASCII_BYTES)) for v in values),
        split=_tiktoken_split,
    )


class TiktokenTokenizer:
    """A tiktoken encoding as a ``Tokenizer``.

    Args:
        encoding: The encoding; ``TiktokenTokenizer.offline(name)`` builds it from package
            data.
    """

    __slots__ = ("_encoding", "_rules")

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self._encoding = encoding
        self._rules: PrefixRules | None = None

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

    @property
    def prefix_rules(self) -> PrefixRules | None:
        """Safe splits and token-length bounds, for ``o200k_base`` and ``cl100k_base`` only.

        Other encodings split text with other patterns, for which the argument was not made:
        they are always encoded whole (``None``).
        """
        if self._rules is None and self._encoding.name in _SPLIT_ENCODINGS:
            self._rules = _tiktoken_rules(self._encoding)
        return self._rules

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

    @property
    def prefix_rules(self) -> PrefixRules:
        """Every split between characters is additive; a token is one byte."""
        return _BYTE_RULES

    def encode(self, text: str) -> Sequence[int]:
        """The UTF-8 bytes of ``text`` (lone surrogates become U+FFFD first, like tiktoken)."""
        return scrub_text(text).encode("utf-8")

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Each token is one byte's value."""
        # By value: bytes() of an array("I") would copy its 4-byte machine words instead.
        return tokens if isinstance(tokens, bytes) else bytes(list(tokens))


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
        encoded_chars: Characters passed to the tokenizer since the last ``clear()``: what
            the builds cost in encoding, whatever the size of their input.
    """

    hits: int
    misses: int
    entries: int
    stored_tokens: int
    encoded_chars: int = 0


@dataclass(frozen=True, slots=True)
class Fit:
    """How a text measures against a room (see ``TokenCounter.fit``).

    Args:
        tokens: The text's token count when ``exact``; otherwise a lower bound, always more
            than the room.
        exact: Whether ``tokens`` is the exact count (the text was encoded whole).
        head: ``None`` when the text fits whole, else at most ``room`` leading tokens that
            decode to a prefix of the text.
    """

    tokens: int
    exact: bool
    head: Sequence[int] | None

    @property
    def fits(self) -> bool:
        """Does the whole text fit in the room?"""
        return self.head is None


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
        self._encoded_chars = 0
        self._lock = threading.Lock()
        rules = getattr(tokenizer, "prefix_rules", None)
        self._rules: PrefixRules | None = rules if isinstance(rules, PrefixRules) else None

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
        tokens = self._encode(text if isinstance(text, str) else "".join(text))
        count = len(tokens)
        head = _head_array(tokens, room) if count > room > 0 else None
        self._store(key, count, head)
        return count, head

    def clip_chars(self, room: int) -> int | None:
        """Characters past which any text holds more than ``room`` tokens, or ``None``.

        Every token stands for at most ``max_token_bytes`` bytes and every character for at
        least one, so a text of more than ``max_token_bytes * room`` characters cannot fit:
        the renderer need not render an item beyond this (``fit(..., hidden=...)``). ``None``
        for a tokenizer without ``prefix_rules``.

        Args:
            room: The largest room the text may be offered (a profile's total budget).
        """
        if self._rules is None:
            return None
        return self._rules.max_token_bytes * max(room, 0) + 1

    def fit(self, parts: tuple[str, ...], room: int, *, hidden: int = 0) -> Fit:
        """Measure ``parts`` (standing for their concatenation) against ``room`` tokens.

        A text of at most ``PREFIX_CHARS_PER_TOKEN * room + PREFIX_SLACK_CHARS`` characters,
        or one the tokenizer has no ``prefix_rules`` for, is measured whole (``measure``,
        cached, exact). A longer one is never hashed or encoded whole: a prefix of
        ``PREFIX_PROBE_CHARS_PER_TOKEN * room + PREFIX_SLACK_CHARS`` characters is encoded,
        grown until it holds more than ``room`` tokens and the rest is proven not to fit (see
        the module docstring); past a safe split only the new characters are encoded. The
        characters encoded are bounded by ``room`` and the tokenizer's longest token, not by
        the text.

        Args:
            parts: The text, in parts (a block's head, body and separator).
            room: Tokens available; ``<= 0`` means count only (measured whole).
            hidden: Characters of the text that follow ``parts`` but were not rendered (at
                least ``clip_chars(room)`` are in ``parts`` then): the text cannot fit, and
                the lower bound counts them (at least a byte each).

        Returns:
            A ``Fit``: exact when the text was measured whole; otherwise ``tokens`` is a
            lower bound above ``room`` and ``head`` holds ``room`` leading tokens, exactly the
            whole text's when the prefix ended at a safe split.
        """
        rules = self._rules
        length = sum(map(len, parts))
        if rules is not None and hidden > 0 and room > 0:
            window = PREFIX_PROBE_CHARS_PER_TOKEN * room + PREFIX_SLACK_CHARS
            return self._fit_prefix(parts, length, room, window, rules, hidden=hidden)
        if (
            rules is None
            or room <= 0
            or length <= PREFIX_CHARS_PER_TOKEN * room + PREFIX_SLACK_CHARS
        ):
            count, head = self.measure(parts, room)
            if hidden > 0:  # incomplete: only "more than the room" is known
                return Fit(max(count, room + 1), False, head)
            return Fit(count, True, head)
        window = PREFIX_PROBE_CHARS_PER_TOKEN * room + PREFIX_SLACK_CHARS
        return self._fit_prefix(parts, length, room, window, rules)

    def _fit_prefix(
        self,
        parts: tuple[str, ...],
        length: int,
        room: int,
        window: int,
        rules: PrefixRules,
        *,
        hidden: int = 0,
    ) -> Fit:
        # Invariant: safe is 0 or a safe split, so safe_tokens == tokens(text[:safe]) are the
        # whole text's leading tokens, and its count is len(safe_tokens) + count(text[safe:]).
        safe = 0
        safe_tokens: list[int] = []
        while window < length:
            split = _find_split(parts, rules, max(safe + 1, window - _SPLIT_SEARCH_CHARS), window)
            tail: Sequence[int] = ()
            if split is not None:
                safe_tokens.extend(self._encode(_slice(parts, safe, split)))
                safe = split
            else:
                # No safe split near the end (one long pre-token): encode up to the window.
                tail = self._encode(_slice(parts, safe, window))
            known = len(safe_tokens) + len(tail)
            if known > room:
                need = room + 1 - len(safe_tokens)
                lower = len(safe_tokens) + _floor_tokens(
                    parts, safe, length, rules, need, hidden=hidden
                )
                # Past a safe split the leading tokens are the whole text's, so more than room
                # of them prove it; otherwise only the floor of the rest can.
                if split is not None or lower > room:
                    leading = [*safe_tokens[:room], *tail[: max(room - len(safe_tokens), 0)]]
                    return Fit(lower, False, _head_array(leading, room))
            # Grow at least twofold, or to the size the tokens seen so far say the room needs.
            seen = split if split is not None else window
            window = max(2 * window, math.ceil(seen * (room + 1) * 1.25 / max(known, 1)))
        count, head = self.measure(parts, room)
        if hidden > 0:
            # Rendered in full, the text is longer still: only its bytes bound it from below.
            floor = math.ceil((length + hidden) / rules.max_token_bytes)
            if head is None:  # a caller that clipped below clip_chars(room): cut what is here
                head = _head_array(self._encode("".join(parts)), room)
            return Fit(max(floor, room + 1), False, head)
        return Fit(count, True, head)

    def decode_prefix(self, tokens: Sequence[int], count: int) -> str:
        """See the module function ``decode_prefix``."""
        return decode_prefix(self.tokenizer, tokens, count)

    def clear(self) -> None:
        """Forget every entry and reset the hit, miss and encoded-character counters."""
        with self._lock:
            self._entries.clear()
            self._stored = self._hits = self._misses = self._encoded_chars = 0

    def info(self) -> CacheInfo:
        """Hits, misses, size of the cache and characters encoded, now."""
        with self._lock:
            return CacheInfo(
                self._hits, self._misses, len(self._entries), self._stored, self._encoded_chars
            )

    def _encode(self, text: str) -> Sequence[int]:
        with self._lock:
            self._encoded_chars += len(text)
        return self.tokenizer.encode(text)

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


PREFIX_CHARS_PER_TOKEN: Final = 8
"""A text longer than this many characters per token of room (plus ``PREFIX_SLACK_CHARS``)
is measured through prefixes; a shorter one is measured whole (and cached)."""

PREFIX_PROBE_CHARS_PER_TOKEN: Final = 2
"""The first prefix has this many characters per token of room (plus the slack): random
letters hold the room in it, ordinary prose (about 4) half. The next prefix is sized by the
characters per token seen so far, with a quarter to spare, and at least twice the last."""

PREFIX_SLACK_CHARS: Final = 256


def _slice(parts: tuple[str, ...], start: int, stop: int) -> str:
    """``"".join(parts)[start:stop]`` without joining the parts."""
    pieces: list[str] = []
    offset = 0
    for part in parts:
        end = offset + len(part)
        if end > start and offset < stop:
            pieces.append(part[max(start - offset, 0) : stop - offset])
        offset = end
    return "".join(pieces)


def _find_split(parts: tuple[str, ...], rules: PrefixRules, start: int, stop: int) -> int | None:
    """The largest safe split in ``[start, stop)`` of the parts' concatenation, or ``None``.

    Splits where one part meets the next are not looked for (the rule needs both sides).
    """
    offset = sum(map(len, parts))
    for part in reversed(parts):
        offset -= len(part)
        lo, hi = max(start - offset, 1), min(stop - offset, len(part))
        if lo < hi:
            found = rules.split(part, lo, hi)
            if found is not None:
                return offset + found
    return None


def _floor_tokens(
    parts: tuple[str, ...],
    start: int,
    length: int,
    rules: PrefixRules,
    enough: int,
    *,
    hidden: int = 0,
) -> int:
    """A lower bound on the tokens of the parts' concatenation from ``start`` on.

    The characters left (``hidden`` more after the parts), each at least a byte, over
    ``max_token_bytes``. Only when that is below ``enough`` are the parts scanned (the scan is
    then bounded by the room too): a part of ASCII letters only, or without ASCII, meets
    tokens that hold fewer of its bytes.
    """
    floor = math.ceil((length + hidden - start) / rules.max_token_bytes)
    if floor >= enough:
        return floor
    offset = 0
    for part in parts:
        end = offset + len(part)
        if end > start:
            chunk = part[max(start - offset, 0) :]
            if chunk.isascii():
                if chunk.isalpha():
                    floor = max(floor, math.ceil(len(chunk) / rules.max_letter_run))
            elif _ASCII_CHAR.search(chunk) is None:
                size = len(chunk.encode("utf-8", "surrogatepass"))
                floor = max(floor, math.ceil(size / rules.max_non_ascii_bytes))
        offset = end
    return floor


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
