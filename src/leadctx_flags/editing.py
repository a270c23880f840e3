"""Editing an overrides document: the no-redeploy rollback path.

Each change is a pure function over ``FlagOverride``; ``apply_change`` turns it into the next
revision of a document, and ``edit_document`` applies it to a file under a lock, atomically.
The CLI (``leadctx flags kill|unkill|allow|deny|clear``) and the guardrails use these.

A missing document is never silently started again from revision 1: every running provider
(and every restarted one, through its cache) holds a higher revision and would refuse it as a
replay, so a kill written that way would be lost. ``edit_document`` refuses a missing file
unless told to create one, and a created document takes its revision from the clock
(``clock_revision``), above any revision an earlier document could have reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadctx_flags.client_ids import canonical_client_id, validate_client_id
from leadctx_flags.document import MAX_REVISION, FlagOverride, OverridesDocument
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.storage import exclusive_lock, read_document, write_document

__all__ = [
    "DocumentMissingError",
    "OverrideChange",
    "RevisionError",
    "allow",
    "apply_change",
    "clear",
    "clock_revision",
    "deny",
    "edit_document",
    "kill",
    "unkill",
]


class DocumentMissingError(FileNotFoundError):
    """The document to edit does not exist and creating one was not asked for.

    Args:
        path: The missing document.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path}: no overrides document here. If it was lost, re-create it with --create "
            "(its revision is taken from the clock, above any a running or restarted process "
            "holds); check the path first if it should exist"
        )
        self.path = path


class RevisionError(ValueError):
    """A requested revision that cannot be used (not above the current one, or out of range)."""


def clock_revision(now: datetime | None = None) -> int:
    """The revision for a newly created document: ``now`` in unix milliseconds.

    Documents edited one step at a time (+1 per edit) stay far below the clock in
    milliseconds, so a document created after a loss outranks the lost one and every cache.

    Args:
        now: The time (default: now).
    """
    moment = now or datetime.now(UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class OverrideChange:
    """A named edit of one flag's overrides.

    Args:
        name: What the change is, for people (``"deny globex"``).
        update: Fields of ``FlagOverride`` to set, or ``None`` to leave as they are.
        clients: Per-client entries to set (``True``/``False``) or remove (``None``).
    """

    name: str
    update: dict[str, Any] | None = None
    clients: dict[str, bool | None] | None = None

    def __call__(self, flag: FlagOverride) -> FlagOverride:
        """The flag's overrides after this change (validated)."""
        values = flag.model_dump()
        values.update(self.update or {})
        for given, value in (self.clients or {}).items():
            # Entries are keyed by the canonical id (NFC), however the change spelt it: a
            # rollback of an id read from records must replace the entry, not collide with it.
            client_id = canonical_client_id(given)
            if value is None:
                values["clients"].pop(client_id, None)
            else:
                values["clients"][client_id] = value
        return FlagOverride.model_validate(values)


def kill() -> OverrideChange:
    """Off for every client, beating every other rule (the document's kill switch)."""
    return OverrideChange("kill", update={"kill": True})


def unkill() -> OverrideChange:
    """Lift the document's kill switch; the other rules apply again."""
    return OverrideChange("unkill", update={"kill": False})


def allow(client_id: str) -> OverrideChange:
    """On for ``client_id``, whatever the env allowlist says (kill still wins)."""
    return OverrideChange(f"allow {client_id}", clients={_checked(client_id): True})


def deny(client_id: str) -> OverrideChange:
    """Off for ``client_id``, even if the env allowlist names it: a one-client rollback."""
    return OverrideChange(f"deny {client_id}", clients={_checked(client_id): False})


def clear(client_id: str) -> OverrideChange:
    """Remove the document's entry for ``client_id``; the env rules decide again."""
    return OverrideChange(f"clear {client_id}", clients={_checked(client_id): None})


def apply_change(
    document: OverridesDocument,
    change: Callable[[FlagOverride], FlagOverride],
    *,
    updated_by: str,
    now: datetime | None = None,
    note: str | None = None,
    flag_key: str = SHARED_BUNDLE_FLAG,
    revision: int | None = None,
) -> OverridesDocument:
    """The next revision of ``document`` with ``change`` applied to ``flag_key``.

    Args:
        document: The current document (revision N).
        change: The edit, e.g. ``deny("globex")``.
        updated_by: Who makes the change; recorded in the document and logged by providers.
        now: The time to record (default: now, UTC).
        note: Replaces the flag's note when given.
        flag_key: The flag to edit.
        revision: The new revision (default N + 1); it must be above N.

    Returns:
        A new document with revision N + 1 (or ``revision``); ``document`` is unchanged.

    Raises:
        RevisionError: ``revision`` is not above N, or above ``MAX_REVISION``.
    """
    new_revision = document.revision + 1 if revision is None else revision
    if new_revision <= document.revision or new_revision > MAX_REVISION:
        raise RevisionError(
            f"revision must be above the document's revision {document.revision} "
            f"and at most {MAX_REVISION}"
        )
    flag = change(document.flag(flag_key) or FlagOverride())
    if note is not None:
        flag = flag.model_copy(update={"note": note})
    return OverridesDocument.model_validate(
        {
            **document.model_dump(by_alias=True),
            "revision": new_revision,
            "updated_at": now or datetime.now(UTC),
            "updated_by": updated_by,
            "flags": {**document.model_dump()["flags"], flag_key: flag.model_dump()},
        }
    )


def edit_document(
    path: Path,
    change: Callable[[FlagOverride], FlagOverride],
    *,
    updated_by: str,
    note: str | None = None,
    create: bool = False,
    revision: int | None = None,
    now: datetime | None = None,
) -> OverridesDocument:
    """Apply ``change`` to the document file at ``path``, atomically and under a lock.

    A symlink is followed: its target is rewritten and the link stays. The rewritten file
    keeps its mode (and owner and group where allowed); see ``storage.atomic_write``.

    Args:
        path: The document file, or a symlink to it.
        change: The edit, e.g. ``kill()``.
        updated_by: Who makes the change.
        note: Replaces the flag's note when given.
        create: Start a new document when none exists, at ``revision`` or else at
            ``clock_revision(now)``. Without it, a missing file is an error.
        revision: The new revision; by default the current one + 1 (or the clock's, for a
            created document). It must be above the current revision.
        now: The time to record (default: now, UTC).

    Raises:
        DocumentMissingError: No file at ``path`` and ``create`` is false.
        RevisionError: ``revision`` is not above the current revision.
        DocumentError: The existing file is not a valid document; it is left untouched.
        OSError: The file or its directory cannot be read or written.
    """
    moment = now or datetime.now(UTC)
    with exclusive_lock(path):
        try:
            current = read_document(path)
        except FileNotFoundError:
            if not create:
                raise DocumentMissingError(path) from None
            current = OverridesDocument()
            if revision is None:
                revision = clock_revision(moment)
        updated = apply_change(
            current, change, updated_by=updated_by, note=note, revision=revision, now=moment
        )
        write_document(path, updated)
    return updated


def _checked(client_id: str) -> str:
    return validate_client_id(client_id, field="client id")
