"""The overrides document on the wire: its schema name, limits, errors and strict parser.

Everything a reader of a document needs before it has one: a provider imports this module, and
the document's pydantic models (``leadctx_flags.document``) load on the first parse, so that
importing the provider loads no pydantic (docs/performance.md, "Import time"). The names are
re-exported by ``leadctx_flags.document``, where they have always been importable.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from leadctx_flags.errors import describe_validation_error

if TYPE_CHECKING:
    from leadctx_flags.document import OverridesDocument

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_REVISION",
    "OVERRIDES_SCHEMA",
    "DocumentError",
    "DocumentTooLargeError",
    "open_document_file",
    "parse_document",
    "shown_key",
]

OVERRIDES_SCHEMA: Final = "leadctx.overrides/v1"


def open_document_file(path: Path) -> BinaryIO:
    """Open the document file at ``path`` for reading, refusing anything but a regular file.

    Opened without blocking: a FIFO named as the document would otherwise hang the open (a
    ``flags kill``, a poll, ``flags explain``) until some writer came.

    Raises:
        FileNotFoundError: No file at ``path``.
        OSError: It cannot be opened, or it is not a regular file (a directory, a FIFO, a
            device such as ``/dev/zero``): ``strerror`` says which, ``filename`` is ``path``.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return os.fdopen(fd, "rb")
    os.close(fd)
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
    raise OSError(errno.EINVAL, f"{kind}, not a document", str(path))


MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""Largest document accepted from any source (1 MiB): a rollout document is a few KiB."""

MAX_REVISION: Final = 2**53
"""Highest revision accepted: exact in every JSON implementation (a double's integer range),
and far above the clock-derived revisions (unix milliseconds) the CLI writes, so that one
absurd revision cannot block every later document."""


class DocumentError(ValueError):
    """An overrides document that cannot be used: not JSON, wrong schema, bad field.

    The message names where the document came from and the offending field. It never echoes
    client lists or notes.
    """


class DocumentTooLargeError(DocumentError):
    """A document above ``MAX_DOCUMENT_BYTES``: every provider refuses it whole.

    Args:
        message: The complete message, naming the document and its real size.
        size: The document's real size in bytes (not the capped number of bytes read).
    """

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


def parse_document(raw: bytes, *, origin: str, size: int | None = None) -> OverridesDocument:
    """Parse and validate an overrides document, strictly.

    Beyond the model's rules, the JSON itself must be unambiguous: a key repeated in one
    object is an error (``"kill": true, ..., "kill": false`` must not quietly mean "not
    killed"), and so is nesting too deep to parse. The ``schema`` field is required on the
    wire: ``{}`` or a document without it is not a v1 document (a placeholder must not
    satisfy ``LEADCTX_FLAG_OVERRIDES_REQUIRED``); only code building a model may omit it.

    Args:
        raw: The document's bytes (UTF-8 JSON).
        origin: Where it came from (a path or URL), for error messages.
        size: The document's real size when ``raw`` is a capped read of it (a reader stops
            at ``MAX_DOCUMENT_BYTES + 1``); the size error then names the real size.

    Raises:
        DocumentTooLargeError: Above ``MAX_DOCUMENT_BYTES``.
        DocumentError: Not UTF-8 JSON, ambiguous, or not a valid ``leadctx.overrides/v1``
            document. The message names ``origin``, each offending field and the rule it
            breaks, never a value.
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        real = max(len(raw), size or 0)
        raise DocumentTooLargeError(
            f"{origin}: overrides document is {real} bytes; at most {MAX_DOCUMENT_BYTES}",
            size=real,
        )
    from pydantic import ValidationError  # noqa: PLC0415 - pydantic loads on the first parse

    from leadctx_flags.document import OverridesDocument  # noqa: PLC0415 - likewise

    loaded = _check_json(raw, origin)
    missing_schema = isinstance(loaded, dict) and "schema" not in loaded
    schema_problem = f"schema: field required (must be {OVERRIDES_SCHEMA!r})"
    try:
        document = OverridesDocument.model_validate_json(raw)
    except ValidationError as err:
        problems = describe_validation_error(err, name=_document_path)
        if missing_schema:
            problems = [schema_problem, *problems]
        problems_text = "; ".join(problems)
        raise DocumentError(f"{origin}: invalid overrides document: {problems_text}") from None
    if missing_schema:
        raise DocumentError(f"{origin}: invalid overrides document: {schema_problem}")
    return document


def _check_json(raw: bytes, origin: str) -> object:
    """Refuse duplicate keys and unparseable nesting; pydantic then reads the same bytes.

    Returns the parsed JSON, or ``None`` when it is not JSON (pydantic's error then names
    the line and column).
    """
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as err:
        raise DocumentError(
            f"{origin}: invalid overrides document: key {err.key} appears twice in one object"
        ) from None
    except RecursionError:
        raise DocumentError(f"{origin}: invalid overrides document: nested too deeply") from None
    except (ValueError, TypeError):
        return None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = shown_key(key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def shown_key(key: str) -> str:
    """A key as messages show it: escaped by ``repr`` and cut at 40 characters."""
    # Keys are field names, flag keys or client ids (which may be logged): escaped, bounded.
    return repr(key if len(key) <= 40 else key[:40] + "...")


def _document_path(loc: tuple[int | str, ...]) -> str:
    # A client id that fails validation is reported as clients[<key>]; pydantic appends
    # "[key]" to say that the key, not the value, is at fault.
    parts: list[str] = []
    for part in loc:
        if part == "[key]":
            continue
        text = str(part)
        if parts and parts[-1] == "clients":
            parts[-1] = f"clients[{shown_key(text)}]"
        else:
            parts.append(text)
    return ".".join(parts) or "(document)"
