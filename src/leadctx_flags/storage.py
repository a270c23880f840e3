"""Reading and atomically writing overrides documents on local disk.

Used by the file source, the last-known-good cache and the CLI's editing commands. A reader
never sees a half-written document: writes go to a temporary file in the same directory,
are flushed to disk, then renamed over the target.

Three things an operator relies on are kept by every write:

- the document stays readable by the services that poll it: a rewrite keeps the existing
  file's permission bits, and its owner and group where this process may set them; a new
  file gets ``0644`` less the umask (never ``mkstemp``'s private ``0600``);
- a path that is a symlink keeps being one: the link's target is rewritten;
- one lock per real file: every path that names the same file takes the same lock;
- what is written is what every provider reads: ``write_document`` parses its own bytes with
  the providers' parser and size cap (``document.parse_document``) before the atomic replace,
  so a write that succeeds is a document no reader refuses.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from leadctx_flags.wire import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    DocumentTooLargeError,
    parse_document,
)

if TYPE_CHECKING:
    from leadctx_flags.document import OverridesDocument

__all__ = [
    "LOCK_FILE_MODE",
    "LOCK_TIMEOUT_SECONDS",
    "NEW_FILE_MODE",
    "NotARegularFileError",
    "atomic_write",
    "encode_document",
    "exclusive_lock",
    "lock_path",
    "open_regular",
    "read_capped",
    "read_document",
    "write_document",
]

NEW_FILE_MODE: Final = 0o644
"""Mode of a newly created document, before the umask: every service user may read it."""

LOCK_FILE_MODE: Final = 0o666
"""Mode of a new lock file (set explicitly, whatever the umask): any account that may edit
the document must be able to take its lock."""

LOCK_TIMEOUT_SECONDS: Final = 10.0
"""How long an edit waits for another edit's lock before it fails, saying so."""


def atomic_write(path: Path, data: bytes) -> None:
    """Replace the file ``path`` names with ``data``; readers see the old or new bytes.

    When ``path`` is a symlink, its target is replaced and the link is left alone. When the
    file exists, the new one gets its permission bits, and its owner and group as far as this
    process may set them (root may; another user may keep at least the group it belongs to).
    A new file gets ``NEW_FILE_MODE`` less the umask.

    Args:
        path: Target file (or a symlink to it); the target's directory must exist.
        data: The complete new content.

    Raises:
        OSError: The directory is not writable or the disk is full; the file is untouched.
            The error names ``path`` (never the temporary file, which no longer exists).
    """
    try:
        _replace(path, data)
    except OSError as err:
        if err.filename == str(path):
            raise
        # ENOSPC from write() or fsync() carries no file name, and one from the temporary
        # file names a file that is gone: name the document the operator asked for.
        raise OSError(err.errno, err.strerror or type(err).__name__, str(path)) from err


def _replace(path: Path, data: bytes) -> None:
    target = path.resolve()
    try:
        existing: os.stat_result | None = target.stat()
    except FileNotFoundError:
        existing = None
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never follow or reuse a planted file; the mode argument is subject to the umask.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            if existing is not None:
                _keep_ownership(handle.fileno(), existing)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _keep_ownership(fd: int, existing: os.stat_result) -> None:
    # Owner and group first: chown may clear set-id bits, which chmod then restores. Windows
    # has neither call (nor POSIX owners); the new file there inherits the directory's ACL.
    if hasattr(os, "fchown"):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, existing.st_uid, existing.st_gid)
        with contextlib.suppress(PermissionError):
            os.fchown(fd, -1, existing.st_gid)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, existing.st_mode & 0o7777)


def encode_document(document: OverridesDocument, *, origin: str) -> bytes:
    """The bytes ``write_document`` writes, checked as every provider will read them.

    Indented JSON with the wire names; when that is above ``MAX_DOCUMENT_BYTES``, the same
    document without indentation (the same content in fewer bytes, e.g. a cache of a compact
    1 MiB document fetched over https). The bytes are then parsed with ``parse_document``,
    the providers' own parser and cap, and must give back ``document`` exactly.

    Args:
        document: The document to encode.
        origin: The file it is for, named in errors.

    Raises:
        DocumentTooLargeError: Even the compact form is above the cap; the message names its
            real size.
        DocumentError: The bytes would be read back as another document, or refused.
    """
    data = document.to_json().encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        data = document.model_dump_json(by_alias=True).encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLargeError(
            f"{origin}: the new overrides document would be {len(data)} bytes, above the "
            f"{MAX_DOCUMENT_BYTES} bytes every provider reads; it was not written",
            size=len(data),
        )
    if parse_document(data, origin=origin) != document:
        raise DocumentError(
            f"{origin}: the new overrides document would not be read back as written; "
            "it was not written"
        )
    return data


def write_document(path: Path, document: OverridesDocument) -> None:
    """Write ``document`` to ``path`` atomically, only in a form every provider accepts.

    This is the one writer of documents (the CLI's edits, the guardrails' ``--apply``, the
    providers' cache): see ``encode_document`` for the checks made before the file is
    touched.

    Args:
        path: Target file, or a symlink to it (see ``atomic_write``).
        document: The document to write.

    Raises:
        DocumentTooLargeError: The document is above the providers' size cap; nothing written.
        DocumentError: It would not read back as written; nothing written.
        OSError: The file cannot be written (see ``atomic_write``); the old one is untouched.
    """
    atomic_write(path, encode_document(document, origin=str(path)))


class NotARegularFileError(OSError):
    """The path names a named pipe, a device or a directory, not a document file."""


def open_regular(path: Path) -> BinaryIO:
    """Open the regular file ``path`` names for reading, without ever blocking on the open.

    A named pipe that no process writes (a process substitution ``<(...)``, a path replaced
    by another process) would block ``open()`` for ever: the provider's start-up and its
    poller thread with it. The file is opened non-blocking and refused unless it is a
    regular file (a symlink to one is followed).

    Args:
        path: The document file.

    Raises:
        FileNotFoundError: No file at ``path``.
        NotARegularFileError: ``path`` is a pipe, a device or a directory; the error names it.
        OSError: The file cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    regular = False
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        if regular and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        if regular:
            return os.fdopen(fd, "rb")
    finally:
        if not regular:
            os.close(fd)
    raise NotARegularFileError(errno.EINVAL, "not a regular file", str(path))


def read_capped(path: Path) -> bytes:
    """Read at most ``MAX_DOCUMENT_BYTES`` of the file at ``path``, as every reader does.

    Args:
        path: The document file.

    Raises:
        FileNotFoundError: No file at ``path``.
        DocumentTooLargeError: The file is above the cap; the message names its real size.
        NotARegularFileError: ``path`` is a pipe, a device or a directory.
        OSError: The file cannot be read.
    """
    with open_regular(path) as handle:
        raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            size = max(len(raw), os.fstat(handle.fileno()).st_size)
            raise DocumentTooLargeError(
                f"{path}: overrides document is {size} bytes; at most {MAX_DOCUMENT_BYTES}",
                size=size,
            )
    return raw


def read_document(path: Path) -> OverridesDocument:
    """Read and validate the document at ``path``.

    Args:
        path: The document file.

    Raises:
        FileNotFoundError: No file at ``path``.
        DocumentError: The file is too large (``DocumentTooLargeError``, naming its real
            size) or not a valid document (the message names it).
    """
    return parse_document(read_capped(path), origin=str(path))


def lock_path(path: Path) -> Path:
    """The lock file for the document ``path`` names: ``<real file>.lock``.

    Symlinks are resolved first, so a link and its target share one lock.

    Args:
        path: The document file, or a symlink to it.
    """
    target = path.resolve()
    return target.with_name(target.name + ".lock")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock beside the real file ``path`` names, for a read-modify-write.

    Two operators (or an operator and the guardrails) editing the same document at once, by
    whatever path, then apply their changes one after the other instead of losing one.

    Args:
        path: The document file, or a symlink to it.

    Raises:
        FileNotFoundError: The document's folder does not exist. filelock would create it;
            a rollback written into a folder made by a typo is a rollback no process reads.
        OSError: The lock file cannot be created (a read-only or full file system); the
            error names the document, and the lock file in its message.
    """
    lock = lock_path(path)
    if not lock.parent.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, "the overrides document's folder does not exist", str(lock.parent)
        )
    from filelock import FileLock, Timeout  # noqa: PLC0415 - readers never lock: only edits do

    # Writable by every account: the next edit may be another operator's (or the guardrails'
    # service account), and a lock file it cannot open would refuse its kill.
    file_lock = FileLock(lock, mode=LOCK_FILE_MODE)
    try:
        file_lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
    except Timeout:
        # A stuck or stopped edit (Ctrl-Z, a hung terminal) must not hold every kill forever.
        raise OSError(
            errno.EWOULDBLOCK,
            f"another edit has held its lock file {lock.name} for {LOCK_TIMEOUT_SECONDS:g} s",
            str(path),
        ) from None
    except OSError as err:
        # The operator named the document, not its lock: say which file cannot be edited.
        reason = f"{err.strerror or type(err).__name__} (cannot create its lock file {lock.name})"
        raise OSError(err.errno, reason, str(path)) from err
    try:
        yield
    finally:
        file_lock.release()
