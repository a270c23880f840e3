"""tiktoken encodings built offline from the rank files shipped in ``leadctx_bundle/data``.

tiktoken downloads its BPE rank files from a public blob store on first use. Production hosts
may have no route to it, and a tokenizer that hangs on a socket inside a prompt build is worse
than none, so leadctx ships ``cl100k_base`` and ``o200k_base`` as gzipped package data and
builds ``tiktoken.Encoding`` objects from them without touching the network.

What we take from the installed tiktoken, and how. Its ``tiktoken_ext.openai_public`` module
defines one constructor per encoding, which calls
``load_tiktoken_bpe(url, expected_hash=...)`` and returns the ``Encoding`` keyword arguments
(``pat_str``, ``special_tokens``, ...). We run a *copy* of that constructor whose global
``load_tiktoken_bpe`` is a recorder: it notes the URL and the expected SHA-256 and returns no
ranks. The module itself is never patched, so concurrent users of tiktoken are unaffected, and
the regex, the special tokens and the hash always match the installed tiktoken rather than
constants copied here that could drift from it.

The uncompressed rank file must hash to that SHA-256; anything else (a missing or truncated
file, a different tiktoken that expects other data) raises ``EncodingDataError`` naming the
file. Encodings are built once per process and shared: ``load_encoding`` is thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import threading
import types
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final, Literal, get_args

import tiktoken
from tiktoken.load import check_hash

from leadctx_bundle.errors import EncodingDataError

__all__ = [
    "TIKTOKEN_ENCODINGS",
    "EncodingSpec",
    "TiktokenEncodingName",
    "build_encoding",
    "encoding_spec",
    "load_encoding",
]

logger = logging.getLogger(__name__)

TiktokenEncodingName = Literal["o200k_base", "cl100k_base"]
"""The encodings leadctx ships data for."""

TIKTOKEN_ENCODINGS: Final[tuple[TiktokenEncodingName, ...]] = get_args(TiktokenEncodingName)

_DATA_PACKAGE: Final = "leadctx_bundle"
_DATA_DIR: Final = "data"


@dataclass(frozen=True, slots=True)
class EncodingSpec:
    """What the installed tiktoken declares for one encoding, minus the ranks.

    Args:
        name: The encoding name (``o200k_base``).
        url: Where tiktoken would download the rank file from (never fetched here).
        expected_hash: SHA-256 (hex) of the uncompressed rank file.
        constructor_kwargs: The ``tiktoken.Encoding`` keyword arguments other than
            ``mergeable_ranks`` (``name``, ``pat_str``, ``special_tokens``, ...).
    """

    name: str
    url: str
    expected_hash: str
    constructor_kwargs: Mapping[str, Any]

    @property
    def file_name(self) -> str:
        """The rank file's name as shipped in ``leadctx_bundle/data`` (gzipped)."""
        return self.url.rsplit("/", 1)[-1] + ".gz"


def encoding_spec(name: TiktokenEncodingName) -> EncodingSpec:
    """Read the installed tiktoken's declaration of ``name`` without loading any ranks.

    Args:
        name: ``o200k_base`` or ``cl100k_base``.

    Raises:
        EncodingDataError: The installed tiktoken does not define ``name``, or its constructor
            no longer loads a single hashed rank file (a tiktoken change leadctx must follow).
    """
    try:
        from tiktoken_ext import openai_public  # noqa: PLC0415 - a plugin module, read on demand
    except ImportError as err:
        raise EncodingDataError(f"tiktoken_ext.openai_public is not installed: {err}") from err
    constructor = openai_public.ENCODING_CONSTRUCTORS.get(name)
    if constructor is None:
        raise EncodingDataError(f"the installed tiktoken does not define encoding {name!r}")

    calls: list[tuple[str, str | None]] = []

    def record(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        calls.append((url, expected_hash))
        return {}

    # A copy of the constructor with its own globals: tiktoken's module stays untouched.
    isolated = types.FunctionType(
        constructor.__code__,
        {**constructor.__globals__, "load_tiktoken_bpe": record},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    kwargs: dict[str, Any] = isolated()
    if len(calls) != 1 or not calls[0][1]:
        raise EncodingDataError(
            f"the installed tiktoken's {name} constructor does not load exactly one rank file "
            "with an expected hash; leadctx cannot verify its shipped data against it"
        )
    url, expected_hash = calls[0]
    kwargs.pop("mergeable_ranks", None)
    return EncodingSpec(name, url, str(expected_hash), kwargs)


def build_encoding(
    name: TiktokenEncodingName, *, data_dir: Traversable | None = None
) -> tiktoken.Encoding:
    """Build ``name`` from the shipped rank file, verified; uncached (see ``load_encoding``).

    Args:
        name: ``o200k_base`` or ``cl100k_base``.
        data_dir: Where ``<name>.tiktoken.gz`` lives; default: ``leadctx_bundle/data``.

    Returns:
        A ``tiktoken.Encoding`` equal, token for token, to ``tiktoken.get_encoding(name)``.

    Raises:
        EncodingDataError: The rank file is missing, not gzip, corrupt, fails the SHA-256
            check or cannot be parsed. The message names the file.
    """
    spec = encoding_spec(name)
    if data_dir is None:
        data_dir = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR)
    ranks = _read_ranks(spec, data_dir.joinpath(spec.file_name))
    return tiktoken.Encoding(**spec.constructor_kwargs, mergeable_ranks=ranks)


def _read_ranks(spec: EncodingSpec, resource: Traversable) -> dict[bytes, int]:
    where = str(resource)
    try:
        contents = gzip.decompress(resource.read_bytes())
    except FileNotFoundError as err:
        raise EncodingDataError(f"{where}: rank file for {spec.name} is missing") from err
    except (OSError, EOFError, zlib.error) as err:
        raise EncodingDataError(f"{where}: cannot decompress ({err})") from err
    if not check_hash(contents, spec.expected_hash):
        raise EncodingDataError(
            f"{where}: SHA-256 of the uncompressed data differs from {spec.expected_hash}, "
            f"the hash the installed tiktoken declares for {spec.name}"
        )
    # The format tiktoken's own load_tiktoken_bpe parses: "<base64 token> <rank>" per line.
    # That helper only reads from a path or URL (through its download cache), so we parse the
    # verified bytes here.
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(contents.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as err:
            raise EncodingDataError(f"{where}: line {number} is not '<base64> <rank>'") from err
    logger.debug("built encoding %s from %s (%s ranks)", spec.name, where, len(ranks))
    return ranks


_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def load_encoding(name: TiktokenEncodingName) -> tiktoken.Encoding:
    """The process-wide ``tiktoken.Encoding`` for ``name``, built on first use.

    Thread-safe: concurrent first calls build it once; later calls take no lock.

    Args:
        name: ``o200k_base`` or ``cl100k_base``.

    Raises:
        EncodingDataError: See ``build_encoding``. A failure is not cached: the next call
            tries again.
    """
    encoding = _encodings.get(name)
    if encoding is not None:
        return encoding
    with _lock:
        encoding = _encodings.get(name)
        if encoding is None:
            encoding = build_encoding(name)
            _encodings[name] = encoding
        return encoding
