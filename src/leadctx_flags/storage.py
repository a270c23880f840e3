"""Reading and atomically writing overrides documents on local disk.

Used by the file source, the last-known-good cache and the CLI's editing commands. A reader
never sees a half-written document: writes go to a temporary file in the same directory,
are flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from leadctx_flags.document import MAX_DOCUMENT_BYTES, OverridesDocument, parse_document

__all__ = ["atomic_write", "exclusive_lock", "read_document", "write_document"]


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never a mix.

    Args:
        path: Target file; its directory must exist.
        data: The complete new content.

    Raises:
        OSError: The directory is not writable or the disk is full; ``path`` is untouched.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise


def write_document(path: Path, document: OverridesDocument) -> None:
    """Write ``document`` to ``path`` atomically, as indented JSON with the wire names."""
    atomic_write(path, document.to_json().encode())


def read_document(path: Path) -> OverridesDocument:
    """Read and validate the document at ``path``.

    Raises:
        FileNotFoundError: No file at ``path``.
        DocumentError: The file is too large or not a valid document (the message names it).
    """
    with path.open("rb") as handle:
        raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    return parse_document(raw, origin=str(path))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock beside ``path`` (``<path>.lock``) for a read-modify-write.

    Two operators (or an operator and the guardrails) editing the same document at once
    then apply their changes one after the other instead of losing one.
    """
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
