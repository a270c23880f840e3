"""Editing an overrides document: the no-redeploy rollback path.

Each change is a pure function over ``FlagOverride``; ``apply_change`` turns it into the next
revision of a document, and ``edit_document`` applies it to a file under a lock, atomically.
The CLI (``leadctx flags kill|unkill|allow|deny|clear``) and the guardrails use these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.document import FlagOverride, OverridesDocument
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.storage import exclusive_lock, read_document, write_document

__all__ = [
    "OverrideChange",
    "allow",
    "apply_change",
    "clear",
    "deny",
    "edit_document",
    "kill",
    "unkill",
]


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
        for client_id, value in (self.clients or {}).items():
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
) -> OverridesDocument:
    """The next revision of ``document`` with ``change`` applied to ``flag_key``.

    Args:
        document: The current document (revision N).
        change: The edit, e.g. ``deny("globex")``.
        updated_by: Who makes the change; recorded in the document and logged by providers.
        now: The time to record (default: now, UTC).
        note: Replaces the flag's note when given.
        flag_key: The flag to edit.

    Returns:
        A new document with revision N + 1; ``document`` itself is unchanged.
    """
    flag = change(document.flag(flag_key) or FlagOverride())
    if note is not None:
        flag = flag.model_copy(update={"note": note})
    return OverridesDocument.model_validate(
        {
            **document.model_dump(by_alias=True),
            "revision": document.revision + 1,
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
) -> OverridesDocument:
    """Apply ``change`` to the document file at ``path``, atomically and under a lock.

    A missing file is created (from revision 0, so the first write is revision 1).

    Raises:
        DocumentError: The existing file is not a valid document; it is left untouched.
        OSError: The file or its directory cannot be read or written.
    """
    with exclusive_lock(path):
        try:
            current = read_document(path)
        except FileNotFoundError:
            current = OverridesDocument()
        updated = apply_change(current, change, updated_by=updated_by, note=note)
        write_document(path, updated)
    return updated


def _checked(client_id: str) -> str:
    return validate_client_id(client_id, field="client id")
